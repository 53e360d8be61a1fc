package tui

import (
	"strings"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/uniseg"
)

// seg is a run of text in one style. Its text has been through safeText
// (segs are only built by txt and wire), so it holds no control bytes.
type seg struct {
	text string
	st   tcell.Style
}

// wire makes a segment of text from the capture: escaped by safeText.
func wire(s string, st tcell.Style) seg { return seg{safeText(s), st} }

// txt makes a segment of the UI's own text (still escaped: labels may
// quote wire text).
func txt(s string, st tcell.Style) seg { return seg{safeText(s), st} }

// line is one logical line of a pane: the rows it takes once wrapped to
// the pane's width, and what Enter (or a click) does on it.
type line struct {
	rows [][]seg
	act  int // meaning depends on the view; -1: nothing
}

// wrapLine wraps segs to width cells into a line. Breaks fall after a
// space where there is one in the row, else at the width. indent cells
// are left blank at the start of continuation rows.
func wrapLine(width, indent int, act int, segs ...seg) line {
	return line{rows: wrapSegs(width, indent, segs), act: act}
}

// oneRow is a line that is not wrapped (the caller fitted it).
func oneRow(act int, segs ...seg) line { return line{rows: [][]seg{segs}, act: act} }

// cell is one grapheme cluster and its style, the unit of wrapping.
type cell struct {
	g  string
	w  int
	st tcell.Style
}

func wrapSegs(width, indent int, segs []seg) [][]seg {
	if width < 4 {
		width = 4
	}
	if indent > width/2 {
		indent = width / 2
	}
	var cells []cell
	for _, sg := range segs {
		rest, state := sg.text, -1
		for rest != "" {
			var g string
			var w int
			g, rest, w, state = uniseg.FirstGraphemeClusterInString(rest, state)
			cells = append(cells, cell{g, w, sg.st})
		}
	}
	if len(cells) == 0 {
		return [][]seg{nil}
	}
	var rows [][]seg
	first := true
	for len(cells) > 0 {
		avail := width
		if !first {
			avail -= indent
		}
		n, used, lastSpace := 0, 0, -1
		for n < len(cells) && used+cells[n].w <= avail {
			if cells[n].g == " " {
				lastSpace = n
			}
			used += cells[n].w
			n++
		}
		if n == 0 {
			n = 1 // a cluster wider than the row: take it anyway
		}
		if n < len(cells) && lastSpace > 0 && lastSpace >= n/2 {
			n = lastSpace + 1
		}
		row := cellsToSegs(cells[:n])
		if !first && indent > 0 {
			row = append([]seg{{strings.Repeat(" ", indent), tcell.StyleDefault}}, row...)
		}
		rows = append(rows, row)
		cells = cells[n:]
		first = false
	}
	return rows
}

func cellsToSegs(cs []cell) []seg {
	var out []seg
	var b strings.Builder
	for i, c := range cs {
		if i > 0 && c.st != cs[i-1].st {
			out = append(out, seg{b.String(), cs[i-1].st})
			b.Reset()
		}
		b.WriteString(c.g)
	}
	if len(cs) > 0 {
		out = append(out, seg{b.String(), cs[len(cs)-1].st})
	}
	return out
}

// width returns the cells s takes.
func width(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return uniseg.StringWidth(s)
		}
	}
	return len(s) // printable ASCII (controls were escaped before)
}

// fit cuts s (already safe) to at most w cells, ending in "…" when cut.
// With words set it cuts after the last whole word that fits, so that an
// address is either whole or absent.
func fit(s string, w int, words bool) string {
	if width(s) <= w {
		return s
	}
	if w <= 1 {
		return strings.Repeat("…", max(w, 0))
	}
	var b strings.Builder
	used, state, lastSpace := 0, -1, -1
	rest := s
	for rest != "" {
		var g string
		var cw int
		g, rest, cw, state = uniseg.FirstGraphemeClusterInString(rest, state)
		if used+cw > w-1 {
			break
		}
		if g == " " {
			lastSpace = b.Len()
		}
		b.WriteString(g)
		used += cw
	}
	out := b.String()
	if words && lastSpace > 0 {
		out = strings.TrimRight(out[:lastSpace], " ")
	} else if words {
		out = ""
	}
	return out + "…"
}

// pad fits s to exactly w cells (cut with … or padded with spaces).
func pad(s string, w int, words bool) string {
	s = fit(s, w, words)
	if n := width(s); n < w {
		s += strings.Repeat(" ", w-n)
	}
	return s
}

// drawRow draws one row of segments at (x, y), clipped to w cells; the
// rest of the row is filled in fillSt.
func drawRow(s tcell.Screen, x, y, w int, row []seg, fillSt tcell.Style) {
	end := x + w
	for _, sg := range row {
		str := sg.text
		for str != "" && x < end {
			g, rest, cw, _ := uniseg.FirstGraphemeClusterInString(str, -1)
			if cw == 0 {
				str = rest
				continue
			}
			if x+cw > end {
				break
			}
			s.Put(x, y, g, sg.st)
			x += cw
			str = rest
		}
	}
	for ; x < end; x++ {
		s.SetContent(x, y, ' ', nil, fillSt)
	}
}

// pane is the scroll state of one scrollable area: a cursor on a logical
// line and the first visual row shown. The fields after top are from the
// last draw and serve the key and mouse handlers.
type pane struct {
	cur, top int
	ensure   bool // bring the cursor into view at the next draw

	first []int // first visual row of each line
	nrows int
	h     int
	y0    int
}

func (p *pane) reset() { *p = pane{} }

// moveCur moves the cursor by d lines (and the view with it).
func (p *pane) moveCur(d int) {
	p.cur = clamp(p.cur+d, 0, len(p.first)-1)
	p.ensure = true
}

// setCur puts the cursor on line i.
func (p *pane) setCur(i int) {
	p.cur = max(0, i)
	p.ensure = true
}

// scroll moves the view by d rows and keeps the cursor inside it.
func (p *pane) scroll(d int) {
	p.top = clamp(p.top+d, 0, p.nrows-p.h)
	if len(p.first) == 0 {
		return
	}
	if p.first[clamp(p.cur, 0, len(p.first)-1)] < p.top {
		p.cur = p.lineAt(p.top)
		if p.first[p.cur] < p.top && p.cur+1 < len(p.first) {
			p.cur++
		}
	}
	if p.first[clamp(p.cur, 0, len(p.first)-1)] > p.top+p.h-1 {
		p.cur = p.lineAt(p.top + p.h - 1)
	}
}

// lineAt returns the line shown on visual row r.
func (p *pane) lineAt(r int) int {
	lo, hi := 0, len(p.first)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if p.first[mid] <= r {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// page is the PgUp/PgDn step.
func (p *pane) page() int { return max(1, p.h-1) }

// draw lays lines out in the h rows from y0 and draws them; the cursor
// line is highlighted when mark is set.
func (p *pane) draw(s tcell.Screen, y0, h, w int, lines []line, mark bool) {
	p.h, p.y0 = h, y0
	p.first = p.first[:0]
	n := 0
	for _, l := range lines {
		p.first = append(p.first, n)
		n += max(1, len(l.rows))
	}
	p.nrows = n
	if len(lines) == 0 {
		p.cur, p.top = 0, 0
	} else {
		p.cur = clamp(p.cur, 0, len(lines)-1)
	}
	if p.ensure && len(lines) > 0 {
		f := p.first[p.cur]
		last := f + max(1, len(lines[p.cur].rows)) - 1
		if last > p.top+h-1 {
			p.top = last - h + 1
		}
		if f < p.top || last-f >= h {
			p.top = f
		}
		p.ensure = false
	}
	p.top = clamp(p.top, 0, n-h)
	row := 0
	for i := p.lineAt(p.top); i < len(lines) && row < h; i++ {
		st := tcell.StyleDefault
		if mark && i == p.cur {
			st = styleSelected
		}
		rows := lines[i].rows
		if len(rows) == 0 {
			rows = [][]seg{nil}
		}
		for j, r := range rows {
			if p.first[i]+j < p.top {
				continue
			}
			if row >= h {
				break
			}
			if st != tcell.StyleDefault {
				r = restyle(r)
			}
			drawRow(s, 0, y0+row, w, r, st)
			row++
		}
	}
	for ; row < h; row++ {
		drawRow(s, 0, y0+row, w, nil, tcell.StyleDefault)
	}
}

// restyle shows a selected row reversed, keeping each segment's colour.
func restyle(r []seg) []seg {
	out := make([]seg, len(r))
	for i, sg := range r {
		out[i] = seg{sg.text, sg.st.Reverse(true)}
	}
	return out
}

// rowLine returns the line under screen row y, or -1.
func (p *pane) rowLine(y int) int {
	r := y - p.y0
	if r < 0 || r >= p.h || len(p.first) == 0 {
		return -1
	}
	r += p.top
	if r >= p.nrows {
		return -1
	}
	return p.lineAt(r)
}

func clamp(x, lo, hi int) int {
	if hi < lo {
		return lo
	}
	return min(max(x, lo), hi)
}
