"""Checks a browser test runs on a bedside page that axe-core does not make: a visible focus indicator on
everything reachable by Tab, the smallest printed text, a PDF's page count, the accessibility tree
Chromium builds, text at 200% and sideways overflow."""

from __future__ import annotations

import re

ALL_IMPACTS = ("minor", "moderate", "serious", "critical")
PRINT_MIN_PX = 12  # 9 pt at 96 px per inch

# Contrast of the focus outline with what surrounds it: the nearest opaque background of the element's parent
# (the ring sits outside the element, with a gap of that background). WCAG relative luminance.
_FOCUS_INDICATOR = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const parse = c => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const v = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return {r: v[0], g: v[1], b: v[2], a: v.length > 3 ? v[3] : 1}; };
  const lum = c => { const f = x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const background = node => { for (let n = node; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor); if (c && c.a > 0) return c; }
    return {r: 255, g: 255, b: 255, a: 1}; };
  const style = getComputedStyle(el);
  const color = parse(style.outlineColor);
  const contrast = color && style.outlineStyle !== 'none' ? ratio(color, background(el.parentElement)) : 0;
  const label = (el.getAttribute('aria-label') || el.textContent || el.value || el.name || '').trim().slice(0, 40);
  return {
    key: [el.tagName, el.id, el.name, el.value, el.getAttribute('href'), label].join('|'),
    element: `${el.tagName.toLowerCase()} "${label}"`,
    width: parseFloat(style.outlineWidth),
    contrast: Math.round(contrast * 100) / 100,
  };
}"""


def focus_indicator_problems(page, *, limit: int = 300) -> tuple[int, list[str]]:
    """Tab through the page from its start; every element that takes focus must show an outline at least
    2 px wide with at least 3:1 contrast against its surroundings. Returns (elements seen, problems)."""
    page.evaluate("() => { if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0); }")
    seen: list[str] = []
    problems: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        info = page.evaluate(_FOCUS_INDICATOR)
        if info is None:
            continue
        if seen and info["key"] == seen[0]:
            break  # round to the start again
        seen.append(info["key"])
        if info["width"] < 2 or info["contrast"] < 3:
            problems.append(f"{info['element']}: {info['width']} px at {info['contrast']}:1")
    return len(seen), problems


_SMALLEST_TEXT = """() => {
  let smallest = [Infinity, ''];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden') continue;
    const size = parseFloat(style.fontSize);
    if (size < smallest[0]) smallest = [size, node.textContent.trim().slice(0, 40)];
  }
  return smallest;
}"""


def smallest_print_text(page) -> tuple[float, str]:
    """(font size in px, the text) of the smallest text shown in print media."""
    page.emulate_media(media="print")
    try:
        size, text = page.evaluate(_SMALLEST_TEXT)
    finally:
        page.emulate_media(media="null")  # no emulation again: page.pdf() prints with print media
    return size, text


def pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def printed_pages(page) -> tuple[int, int]:
    """(Letter pages, A4 pages) of the current page printed to PDF."""
    return pdf_pages(page.pdf(format="Letter")), pdf_pages(page.pdf(format="A4"))


def overflowing(page) -> list[str]:
    """Elements of the main content that reach past the right edge of the window (sideways scrolling)."""
    return page.evaluate(
        """() => { const width = document.documentElement.clientWidth; const found = [];
        document.querySelectorAll('main *').forEach(e => { const r = e.getBoundingClientRect();
          if (r.width && r.right > width + 1) found.push(`${e.tagName.toLowerCase()}.${e.className} ${r.right}`); });
        const scroll = document.documentElement.scrollWidth;
        if (scroll > width) found.push(`document ${scroll}`);
        return found; }"""
    )


def text_at_200_percent(page) -> None:
    """The browser's text size at 200% (its default font size doubled, as in the browser's settings), so
    rem sizes and em breakpoints follow; page zoom would not test the same thing."""
    session = page.context.new_cdp_session(page)
    session.send("Page.enable")
    session.send("Page.setFontSizes", {"fontSizes": {"standard": 32, "fixed": 26}})


def accessible_name(page, selector: str) -> str:
    """The name Chromium's own accessibility tree gives the first element matching `selector`."""
    session = page.context.new_cdp_session(page)
    session.send("DOM.enable")
    session.send("Accessibility.enable")
    root = session.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    node = session.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    nodes = session.send("Accessibility.getPartialAXTree", {"nodeId": node, "fetchRelatives": False})["nodes"]
    return nodes[0].get("name", {}).get("value", "")


def border_contrasts(page, selector: str) -> list[float]:
    """For each element matching `selector`: the lower contrast of its left border with its own background
    and with the page's white (a border that marks a status or a warning must stand out from both)."""
    return page.evaluate(
        """(selector) => {
        const parse = c => c.match(/[0-9.]+/g).slice(0, 3).map(Number);
        const lum = ([r, g, b]) => { const f = x => { x /= 255;
          return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); };
          return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
        const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
          return (x + 0.05) / (y + 0.05); };
        return [...document.querySelectorAll(selector)].map(e => { const s = getComputedStyle(e);
          const border = parse(s.borderLeftColor);
          const own = s.backgroundColor === 'rgba(0, 0, 0, 0)' ? [255, 255, 255] : parse(s.backgroundColor);
          return Math.round(Math.min(ratio(border, own), ratio(border, [255, 255, 255])) * 100) / 100; });
      }""",
        selector,
    )
