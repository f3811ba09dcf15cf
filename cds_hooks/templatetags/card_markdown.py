"""The one filter CDS Hooks card templates need: `md`, which shows a data value literally in markdown."""

from __future__ import annotations

from django import template

register = template.Library()

MARKDOWN_SPECIAL = "`*_[]<>|~#"


@register.filter(name="md")
def markdown_escape(value: object) -> str:
    """Text from outside (the EHR, protocol data) shown literally: no links, HTML or table breaks.
    Card templates render with HTML autoescape off (the detail is markdown, not HTML): every data value
    goes through this filter instead."""
    escaped = str(value).replace("\\", "\\\\")
    for char in MARKDOWN_SPECIAL:
        escaped = escaped.replace(char, "\\" + char)
    return escaped
