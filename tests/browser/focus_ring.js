// The focused control's ring: its width, offset, contrast against what surrounds it (WCAG 2.4.13,
// >= 3:1), and how many rings the page draws (one at a time). Evaluated by tests/browser/pages.py.
() => {
  const parse = (c) => { const m = c.match(/[\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                       return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const ratio = (a, b) => { const x = lum(a), y = lum(b); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); };
  const background = (node) => {
    for (let n = node; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c.a > 0.5) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const active = document.activeElement;
  if (!active || active === document.body) return null;
  const drawn = (n) => { const s = getComputedStyle(n); return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0; };
  const rings = [...document.querySelectorAll('body *')].filter(drawn);
  let ring = drawn(active) ? active : active.closest('label');
  if (!ring || !drawn(ring)) return {element: active.id || active.tagName, rings: rings.length, ratio: 0, width: 0};
  const style = getComputedStyle(ring);
  // The ring is drawn 2px outside the control: what it touches is the parent's background.
  const outside = ring.parentElement ? background(ring.parentElement) : {r: 255, g: 255, b: 255};
  const color = parse(style.outlineColor);
  return {element: active.id || active.name || active.tagName, rings: rings.length,
          width: parseFloat(style.outlineWidth),
          offset: parseFloat(style.outlineOffset), ratio: ratio(color, outside)};
}
