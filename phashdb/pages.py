"""The HTML pages phashdb writes (the report) and serves (the review page), rendered from the
Jinja templates in phashdb/templates: one environment, autoescaping HTML."""

from __future__ import annotations


def render(name: str, **values) -> str:
    """The template `name` (e.g. "report.html") rendered with `values`."""
    from jinja2 import Environment, PackageLoader, select_autoescape  # only pages need Jinja

    env = Environment(
        loader=PackageLoader("phashdb", "templates"), autoescape=select_autoescape(["html"])
    )
    return env.get_template(name).render(**values)
