"""Small fixes to the HTML that Jupyter Book 1 writes, so that pages log no console error.

Sphinx 7 (which Jupyter Book 1 pins) writes an inline script added after the builder started
twice: the copy it keeps as `None` and the one it re-adds as `''` no longer compare equal.
sphinx-thebe adds such a script, `const THEBE_JS_URL = ...`, and the second `const` is a
SyntaxError on every page. Keep the first of identical scripts.
"""


def _drop_repeated_scripts(app, pagename, templatename, context, doctree):
    seen, kept = set(), []
    for js in context.get("script_files", []):
        key = (js.filename or "", js.priority, tuple(sorted(js.attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def setup(app):
    app.connect("html-page-context", _drop_repeated_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
