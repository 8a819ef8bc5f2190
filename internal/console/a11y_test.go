package console_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/chromedp"
)

// a11yPages are the console's pages and what shows once each has loaded.
var a11yPages = []struct{ page, ready string }{
	{"dashboard", "#dash-lag"},
	{"events", "#ev-table tbody tr[data-event-id]"},
	{"lake", "#lake-history table"},
	{"trails", "#trails-table"},
	{"stores", "#stores-table"},
	{"logs", "#lg-table"},
	{"insights", "#insight-chart svg, #insight-chart p"},
	{"findings", "#findings-table"},
}

// namedRoles are the roles a screen reader announces by name: without one, a control is "button" and no more.
var namedRoles = map[string]bool{"button": true, "link": true, "textbox": true, "searchbox": true, "combobox": true, "listbox": true,
	"checkbox": true, "radio": true, "switch": true, "slider": true, "spinbutton": true, "tab": true, "menuitem": true, "img": true,
	"dialog": true, "navigation": true, "search": true, "form": true}

// checkA11y fails the test for every control of the page Chromium's accessibility tree leaves
// without a name, and for every visible text whose contrast against its background is below
// WCAG AA (4.5:1, 3:1 for large text).
func (e *env) checkA11y(page string) {
	e.t.Helper()
	for _, p := range e.a11yProblems() {
		e.t.Errorf("%s: %s", page, p)
	}
}

func (e *env) a11yProblems() []string {
	e.t.Helper()
	// Decoded here rather than by accessibility.GetFullAXTree: newer Chromium versions report
	// properties (ignored reasons) that the CDP types do not know and refuse.
	type value struct {
		Value any `json:"value"`
	}
	var tree struct {
		Nodes []struct {
			Ignored bool              `json:"ignored"`
			Role    *value            `json:"role"`
			Name    *value            `json:"name"`
			Backend cdp.BackendNodeID `json:"backendDOMNodeId"`
		} `json:"nodes"`
	}
	e.run("accessibility tree", chromedp.ActionFunc(func(ctx context.Context) error {
		return cdp.Execute(ctx, accessibility.CommandGetFullAXTree, nil, &tree)
	}))
	var problems []string
	checked := 0
	for _, n := range tree.Nodes {
		if n.Ignored || n.Role == nil {
			continue
		}
		role, name := fmt.Sprint(n.Role.Value), ""
		if n.Name != nil {
			name = fmt.Sprint(n.Name.Value)
		}
		if !namedRoles[role] {
			continue
		}
		checked++
		if strings.TrimSpace(name) == "" {
			var html string
			e.run("describe a node", chromedp.ActionFunc(func(ctx context.Context) error {
				html, _ = dom.GetOuterHTML().WithBackendNodeID(n.Backend).Do(ctx)
				return nil
			}))
			problems = append(problems, fmt.Sprintf("a %s has no accessible name: %.200s", role, html))
		}
	}
	if checked < 10 {
		problems = append(problems, fmt.Sprintf("only %d named controls in the accessibility tree; is the page there?", checked))
	}
	var bad []string
	e.run("contrast", chromedp.Evaluate(contrastJS, &bad))
	for _, b := range bad {
		problems = append(problems, "text below WCAG AA contrast: "+b)
	}
	return problems
}

// contrastJS lists the visible texts whose contrast is below WCAG AA, as "selector “text” ratio".
// A background is the first opaque one up the tree with the translucent ones above it blended in.
const contrastJS = `(() => {
  document.getAnimations().forEach(a => a.finish());
  const parse = c => { const m = /rgba?\(([^)]+)\)/.exec(c || ""); if (!m) return null; const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const lin = v => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = c => 0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2]);
  const over = (top, under) => { const a = top[3]; return [0, 1, 2].map(i => top[i] * a + under[i] * (1 - a)).concat(1); };
  const background = el => {
    const layers = [];
    for (let x = el; x; x = x.parentElement) {
      const c = parse(getComputedStyle(x).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) bg = over(layers[i], bg);
    return bg;
  };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    if (!el.getClientRects().length || el.closest(".sr-only, [hidden], dialog:not([open]), :disabled, option, title")) continue;
    const st = getComputedStyle(el);
    if (st.visibility === "hidden") continue;
    let fg = parse(el instanceof SVGElement ? st.fill : st.color);
    if (!fg) continue;
    const bg = background(el);
    fg = over(fg, bg);
    const l1 = lum(fg), l2 = lum(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(st.fontSize), large = size >= 24 || (size >= 18.66 && Number(st.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (typeof el.className === "string" && el.className ? "." + el.className.trim().split(/\s+/).join(".") : "");
      bad.push(name + " “" + el.textContent.trim().slice(0, 40) + "” " + ratio.toFixed(2) + ":1");
    }
  }
  return bad;
})()`

// waitJS waits until the JavaScript expression expr is true.
func (e *env) waitJS(expr string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ok bool
		ctx, cancel := context.WithTimeout(e.ctx, time.Second)
		err := chromedp.Run(ctx, chromedp.Evaluate(expr, &ok))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s is still not true after 5 s (%v)", expr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
