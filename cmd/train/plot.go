package main

import (
	"fmt"
	"html"
	"math"
	"strings"

	"github.com/seed8b67a5e0/underflow/fpnet/atomicfile"
)

// writeCurveSVG draws test (with -val: validation) accuracy against
// wall-clock time, with the article's figures as reference lines, as a
// self-contained SVG.
func writeCurveSVG(path string, o *Options, recipe string, pts []curvePoint) error {
	const W, H, left, right, top, bottom = 720, 420, 70, 20, 40, 50
	pw, ph := float64(W-left-right), float64(H-top-bottom)
	tmax := 1.0
	lo := 0.9
	for _, p := range pts {
		tmax = math.Max(tmax, p.Seconds)
		lo = math.Min(lo, p.Acc)
	}
	lo = math.Max(0, math.Floor(lo*20)/20) // a multiple of 5%
	hi := 1.0
	x := func(t float64) float64 { return float64(left) + pw*t/tmax }
	y := func(a float64) float64 { return float64(top) + ph*(hi-math.Min(math.Max(a, lo), hi))/(hi-lo) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", W, H)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="14">%s</text>`+"\n", left, html.EscapeString(fmt.Sprintf("MNIST %s accuracy: %s, recipe %s, seed %d", setName(o), o.Method, recipe, o.Seed)))
	// Grid and axes.
	for a := lo; a <= hi+1e-9; a += 0.01 {
		if int(math.Round(a*100))%(max(1, int(math.Round((hi-lo)*100))/10)) != 0 {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.0f%%</text>`+"\n",
			left, y(a), W-right, y(a), left-6, y(a)+4, 100*a)
	}
	for i := 0; i <= 5; i++ {
		t := tmax * float64(i) / 5
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(t), H-bottom+18, fmtSeconds(t))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">wall-clock time</text>`+"\n", float64(left)+pw/2, H-10)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="black"/>`+"\n", left, top, pw, ph)
	// The article's figures.
	for _, ref := range []struct {
		acc   float64
		label string
		color string
	}{{0.92, "OpenAI 2017 backprop 92%", "#c33"}, {0.967, "OpenAI 2017 ES 96.7%", "#393"}, {0.9851, "ReLU MLP 98.51%", "#888"}} {
		if ref.acc < lo {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-dasharray="6,4"/><text x="%d" y="%.1f" fill="%s" text-anchor="end">%s</text>`+"\n",
			left, y(ref.acc), W-right, y(ref.acc), ref.color, W-right-4, y(ref.acc)-4, ref.color, ref.label)
	}
	// The run.
	if len(pts) > 0 {
		var d strings.Builder
		for i, p := range pts {
			cmd := "L"
			if i == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&d, "%s%.1f,%.1f ", cmd, x(p.Seconds), y(p.Acc))
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#17c" stroke-width="2"/>`+"\n", strings.TrimSpace(d.String()))
		for _, p := range pts {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2.5" fill="#17c"><title>step %d: %.2f%%</title></circle>`+"\n", x(p.Seconds), y(p.Acc), p.Step, 100*p.Acc)
		}
		last := pts[len(pts)-1]
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#17c" text-anchor="end">%.2f%%</text>`+"\n", x(last.Seconds)-4, y(last.Acc)+16, 100*last.Acc)
	}
	b.WriteString("</svg>\n")
	return atomicfile.WriteFile(path, []byte(b.String()))
}

func fmtSeconds(t float64) string {
	switch {
	case t >= 3600:
		return fmt.Sprintf("%.1fh", t/3600)
	case t >= 120:
		return fmt.Sprintf("%.0fm", t/60)
	}
	return fmt.Sprintf("%.0fs", t)
}

// setName names the set the periodic evaluations score.
func setName(o *Options) string {
	if o.Val > 0 {
		return "validation"
	}
	return "test"
}
