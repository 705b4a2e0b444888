"""The report's plots as inline SVG, drawn by pygal: trends over the history and the timeline.

pygal writes plain SVG with real <text> nodes and its own CSS inlined; its tooltip script
would load from a CDN, so it is switched off (`js=[]`): the page needs no network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prebuild.report.document import cache_ratio, parse_time

Doc = Mapping[str, Any]
MB = 1_000_000


def _style(**extra: Any) -> Any:
    from pygal.style import Style

    return Style(
        **extra,
        background="white",
        plot_background="white",
        font_family="sans-serif",
        colors=("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf"),
    )


def _config(title: str, y_title: str, style: Any = None, **extra: Any) -> dict[str, Any]:
    return {
        "title": title,
        "y_title": y_title,
        "js": [],  # the default tooltip script is fetched from a CDN: keep the page offline
        "disable_xml_declaration": True,
        "style": style or _style(),
        "width": 520,
        "height": 300,
        "explicit_size": True,
        "legend_at_bottom": True,
        "print_values": False,
        "dots_size": 4,
        "show_minor_y_labels": False,
        "y_labels_major_count": 6,
        **extra,
    }


def night_labels(docs: Sequence[Doc]) -> list[str]:
    """Dates of the nights; times to the second when they all fall within one day."""
    times = [parse_time(d.get("started")) for d in docs]
    known = [t for t in times if t is not None]
    close = bool(known) and (max(known) - min(known)).total_seconds() < 86400
    fmt = "%H:%M:%S" if close else "%m-%d %H:%M"
    return [t.strftime(fmt) if t else "?" for t in times]


def trend(
    title: str, y_title: str, docs: Sequence[Doc], series: Mapping[str, Sequence[float | None]]
) -> str:
    """One line chart over the nights; a None is a gap (e.g. no S3 cache configured)."""
    import pygal

    chart = pygal.Line(**_config(title, y_title, x_label_rotation=30, show_minor_x_labels=True))
    chart.x_labels = night_labels(docs)
    for name, values in series.items():
        chart.add(name, list(values))
    return str(chart.render(is_unicode=True))


def trends(docs: Sequence[Doc]) -> dict[str, str]:
    """plot id -> SVG for every trend the page shows, oldest night first."""

    def storage(doc: Doc, backend: str) -> float | None:
        size = (doc.get("storage") or {}).get(backend)
        return round(size / MB, 2) if isinstance(size, int | float) else None

    def images(doc: Doc) -> list[Mapping[str, Any]]:
        return list(doc.get("images") or [])

    def minutes(doc: Doc) -> float:
        built = [i for i in images(doc) if i.get("status") in ("built", "failed")]
        return round(sum(float(i.get("seconds") or 0) for i in built) / 60, 2)

    def ratio(doc: Doc) -> float | None:
        value = cache_ratio(images(doc))
        return None if value is None else round(100 * value, 1)

    return {
        "duration": trend(
            "Build minutes per night",
            "minutes",
            docs,
            {
                "image build time": [minutes(d) for d in docs],
                "wall time": [round(float(d.get("seconds") or 0) / 60, 2) for d in docs],
            },
        ),
        "rebuilt": trend(
            "Images rebuilt per night",
            "images",
            docs,
            {
                "built": [sum(i.get("status") == "built" for i in images(d)) for d in docs],
                "failed": [sum(i.get("status") == "failed" for i in images(d)) for d in docs],
            },
        ),
        "storage": trend(
            "Storage",
            "MB",
            docs,
            {
                "registry": [storage(d, "registry") for d in docs],
                "S3": [storage(d, "s3") for d in docs],
            },
        ),
        "cache": trend(
            "Cache hit ratio of built images",
            "% of steps cached",
            docs,
            {"cache hits": [ratio(d) for d in docs]},
        ),
    }


def timeline(doc: Doc) -> str:
    """The last night's builds as bars over time, one row per image (labelled with its
    dependency wave): overlapping bars ran in parallel."""
    import pygal

    built = [i for i in doc.get("images") or [] if i.get("start_offset") is not None]
    built.sort(key=lambda i: (i.get("start_offset"), i.get("name")))
    chart = pygal.XY(
        **_config(
            "Build timeline (seconds since start)",
            "",
            style=_style(stroke_width="14", stroke_width_hover="16"),  # lines drawn as bars
            show_dots=False,
            height=max(160, 60 + 40 * len(built)),
            y_labels=[
                {"label": f"{i.get('name')} · wave {i.get('wave')}", "value": -n}
                for n, i in enumerate(built)
            ],
            show_legend=False,
            range=(-len(built) + 0.5, 0.5) if built else None,
            show_y_guides=False,
        )
    )
    for n, image in enumerate(built):
        start = float(image["start_offset"])
        end = start + float(image.get("seconds") or 0)
        title = f"{image.get('name')} (wave {image.get('wave')}, {image.get('status')})"
        chart.add(title, [(start, -n), (max(end, start + 0.05), -n)])
    return str(chart.render(is_unicode=True))
