package tui

import (
	"fmt"
	"strings"

	"github.com/gdamore/tcell/v2"
)

// Pane names the part of the screen that has the keyboard.
type Pane uint8

const (
	PaneSessions Pane = iota // the session list (initial focus)
	PaneRecords              // the selected session's records
	PaneMessage              // the selected message's summary
)

func (p Pane) String() string {
	return [...]string{"sessions", "records", "message"}[p]
}

// View is the UI state: selection, scroll positions, filter and focus.
// It is used on the UI goroutine only.
type View struct {
	m *Model

	Focus  Pane
	Filter string
	// editing is set while the filter is typed after "/".
	editing    bool
	prevFilter string

	selID   uint64 // selected session, followed across updates
	selIdx  int    // its index, used when it left the filtered list
	listTop int    // first session row shown
	recTop  int    // first record line shown; -1 follows the end
	msgIdx  int    // selected message of the session

	snap Snapshot
	lay  layout
	quit bool
}

// NewView returns a view of m with the session list focused.
func NewView(m *Model) *View {
	v := &View{m: m, recTop: 0}
	v.Refresh()
	return v
}

// Refresh takes a new snapshot of the model.
func (v *View) Refresh() {
	v.snap = v.m.Snapshot(v.Filter, v.selID, v.selIdx)
	if v.snap.Selected < 0 {
		v.selIdx = 0
		return
	}
	s := &v.snap.Sessions[v.snap.Selected]
	if s.ID != v.selID {
		v.selID = s.ID
		v.recTop, v.msgIdx = 0, 0
	}
	v.selIdx = v.snap.Selected
	v.msgIdx = clamp(v.msgIdx, 0, len(s.Messages)-1)
}

// Selected returns the selected session, or nil.
func (v *View) Selected() *Session {
	if v.snap.Selected < 0 {
		return nil
	}
	return &v.snap.Sessions[v.snap.Selected]
}

// Quit reports whether the user asked to quit.
func (v *View) Quit() bool { return v.quit }

// HandleKey applies one key press. The caller redraws afterwards.
func (v *View) HandleKey(ev *tcell.EventKey) {
	if v.editing {
		v.editKey(ev)
		return
	}
	switch ev.Key() {
	case tcell.KeyCtrlC:
		v.quit = true
		return
	case tcell.KeyUp:
		v.move(-1)
	case tcell.KeyDown:
		v.move(1)
	case tcell.KeyPgUp:
		v.move(-v.page())
	case tcell.KeyPgDn:
		v.move(v.page())
	case tcell.KeyHome:
		v.move(-1 << 30)
	case tcell.KeyEnd:
		v.move(1 << 30)
	case tcell.KeyTab, tcell.KeyEnter:
		v.Focus = (v.Focus + 1) % 3
	case tcell.KeyBacktab:
		v.Focus = (v.Focus + 2) % 3
	case tcell.KeyEsc:
		if v.Filter != "" {
			v.setFilter("")
		} else {
			v.Focus = PaneSessions
		}
	case tcell.KeyRune:
		switch ev.Rune() {
		case 'q':
			v.quit = true
		case 'k':
			v.move(-1)
		case 'j':
			v.move(1)
		case 'g':
			v.move(-1 << 30)
		case 'G':
			v.move(1 << 30)
		case '/':
			v.editing, v.prevFilter = true, v.Filter
		}
	}
}

func (v *View) editKey(ev *tcell.EventKey) {
	switch ev.Key() {
	case tcell.KeyCtrlC:
		v.quit = true
	case tcell.KeyEnter:
		v.editing = false
	case tcell.KeyEsc:
		v.editing = false
		v.setFilter(v.prevFilter)
	case tcell.KeyBackspace, tcell.KeyBackspace2:
		if r := []rune(v.Filter); len(r) > 0 {
			v.setFilter(string(r[:len(r)-1]))
		}
	case tcell.KeyRune:
		if len(v.Filter) < 200 {
			v.setFilter(v.Filter + string(ev.Rune()))
		}
	}
}

func (v *View) setFilter(f string) {
	v.Filter = f
	v.Refresh()
}

// page is the height of the focused pane, the PgUp/PgDn step.
func (v *View) page() int {
	switch v.Focus {
	case PaneRecords:
		return max(1, v.lay.recH)
	case PaneMessage:
		return max(1, v.lay.msgH)
	}
	return max(1, v.lay.listH)
}

// move moves the focused pane's cursor by d.
func (v *View) move(d int) {
	switch v.Focus {
	case PaneSessions:
		if len(v.snap.Sessions) == 0 {
			return
		}
		i := clamp(v.snap.Selected+d, 0, len(v.snap.Sessions)-1)
		v.selIdx, v.selID = i, v.snap.Sessions[i].ID
		v.recTop, v.msgIdx = 0, 0
		v.Refresh()
	case PaneRecords:
		s := v.Selected()
		if s == nil {
			return
		}
		last := max(0, len(s.Lines)-v.lay.recH)
		top := v.recTop
		if top < 0 {
			top = last
		}
		v.recTop = clamp(top+d, 0, last)
		if v.recTop == last && d > 0 {
			v.recTop = -1 // at the end: keep following new records
		}
	case PaneMessage:
		if s := v.Selected(); s != nil {
			v.msgIdx = clamp(v.msgIdx+d, 0, len(s.Messages)-1)
		}
	}
}

func clamp(x, lo, hi int) int {
	if hi < lo {
		return lo
	}
	return min(max(x, lo), hi)
}

// layout is where the panes are for one screen size.
type layout struct {
	w, h       int
	listW      int // session list width (columns 0..listW-1), separator at listW
	listH      int // session rows (below the title)
	recH       int // record rows (below the title)
	msgY, msgH int // message pane title row and body rows
	statusY    int
	small      bool
}

func newLayout(w, h int) layout {
	l := layout{w: w, h: h, statusY: h - 1}
	if w < 40 || h < 8 {
		l.small = true
		return l
	}
	l.listW = clamp(w*2/5, 24, 72)
	l.listH = h - 2 // title + status
	body := h - 1   // rows above the status line
	l.msgH = clamp(body/3-1, 3, 10)
	l.msgY = body - l.msgH - 1
	l.recH = l.msgY - 1
	return l
}

var (
	styleTitle    = tcell.StyleDefault.Bold(true)
	styleFocus    = tcell.StyleDefault.Bold(true).Reverse(true)
	styleSelected = tcell.StyleDefault.Reverse(true)
	styleStatus   = tcell.StyleDefault.Reverse(true)
	styleDim      = tcell.StyleDefault.Dim(true)
)

// Draw renders v on s. It must run on the goroutine that owns s.
func (v *View) Draw(s tcell.Screen) {
	w, h := s.Size()
	v.lay = newLayout(w, h)
	s.Clear()
	if v.lay.small {
		put(s, 0, 0, w, "mailtap tui: terminal too small", tcell.StyleDefault)
		put(s, 0, h-1, w, v.status(), styleStatus)
		s.Show()
		return
	}
	v.drawList(s)
	v.drawRecords(s)
	v.drawMessage(s)
	for y := 0; y < v.lay.statusY; y++ {
		s.SetContent(v.lay.listW, y, '│', nil, styleDim)
	}
	fill(s, 0, v.lay.statusY, w, styleStatus)
	put(s, 0, v.lay.statusY, w, v.status(), styleStatus)
	s.Show()
}

func (v *View) title(s tcell.Screen, x, y, width int, p Pane, text string) {
	st := styleTitle
	if v.Focus == p {
		st = styleFocus
		fill(s, x, y, width, st)
	}
	put(s, x, y, width, text, st)
}

func (v *View) drawList(s tcell.Screen) {
	l := &v.lay
	n := len(v.snap.Sessions)
	t := fmt.Sprintf(" Sessions %d", n)
	if v.Filter != "" {
		t += fmt.Sprintf(" of %d matching %q", v.snap.Total, v.Filter)
	}
	v.title(s, 0, 0, l.listW, PaneSessions, t)
	sel := v.snap.Selected
	if sel >= 0 {
		if sel < v.listTop {
			v.listTop = sel
		}
		if sel >= v.listTop+l.listH {
			v.listTop = sel - l.listH + 1
		}
	}
	v.listTop = clamp(v.listTop, 0, n-l.listH)
	for row := 0; row < l.listH && v.listTop+row < n; row++ {
		i := v.listTop + row
		st := tcell.StyleDefault
		if i == sel {
			st = styleSelected
			fill(s, 0, 1+row, l.listW, st)
		}
		put(s, 0, 1+row, l.listW, v.snap.Sessions[i].Row(), st)
	}
	if n == 0 {
		msg := "no sessions yet"
		if v.snap.Done {
			msg = "no sessions"
		}
		if v.Filter != "" {
			msg = "no session matches the filter"
		}
		put(s, 1, 1, l.listW-1, msg, styleDim)
	}
}

func (v *View) drawRecords(s tcell.Screen) {
	l := &v.lay
	x, width := l.listW+1, l.w-l.listW-1
	sess := v.Selected()
	if sess == nil {
		v.title(s, x, 0, width, PaneRecords, " Records")
		return
	}
	lines := sess.Lines
	top := v.recTop
	last := max(0, len(lines)-l.recH)
	if top < 0 || top > last {
		top = last
	}
	t := fmt.Sprintf(" #%d %s %s -> %s  lines %d-%d of %d", sess.ID, sess.Proto, sess.Client, sess.Server,
		min(top+1, len(lines)), min(top+l.recH, len(lines)), len(lines))
	if sess.DroppedLines > 0 {
		t += fmt.Sprintf(" (+%d earlier dropped)", sess.DroppedLines)
	}
	v.title(s, x, 0, width, PaneRecords, t)
	for row := 0; row < l.recH && top+row < len(lines); row++ {
		put(s, x, 1+row, width, lines[top+row], tcell.StyleDefault)
	}
}

func (v *View) drawMessage(s tcell.Screen) {
	l := &v.lay
	x, width := l.listW+1, l.w-l.listW-1
	sess := v.Selected()
	if sess == nil || len(sess.Messages) == 0 {
		v.title(s, x, l.msgY, width, PaneMessage, " Message: none in this session")
		return
	}
	i := clamp(v.msgIdx, 0, len(sess.Messages)-1)
	m := sess.Messages[i]
	v.title(s, x, l.msgY, width, PaneMessage, fmt.Sprintf(" Message %d/%d: %s", i+1, len(sess.Messages), m.Title))
	lines := messageLines(&m)
	for row := 0; row < l.msgH && row < len(lines); row++ {
		put(s, x, l.msgY+1+row, width, lines[row], tcell.StyleDefault)
	}
}

// messageLines is the summary of one message, most useful lines first.
func messageLines(m *Message) []string {
	var out []string
	if m.MailFrom != "" || len(m.RcptTo) > 0 {
		out = append(out, fmt.Sprintf("envelope: <%s> -> %s", m.MailFrom, strings.Join(wrapAngle(m.RcptTo), ", ")))
	}
	if m.Message == nil {
		return append(out, "(no message body)")
	}
	add := func(k, v string) {
		if v != "" {
			out = append(out, k+v)
		}
	}
	add("From:    ", m.From)
	add("To:      ", strings.Join(m.To, ", "))
	add("Cc:      ", strings.Join(m.Cc, ", "))
	add("Subject: ", m.Subject)
	add("Date:    ", m.Date)
	tr := ""
	if m.Truncated {
		tr = " TRUNCATED"
	}
	out = append(out, fmt.Sprintf("size %d sha256 %s%s", m.Size, m.SHA256, tr))
	if len(m.Attachments) == 0 {
		out = append(out, "attachments: none")
	}
	for _, a := range m.Attachments {
		name := a.Filename
		if name == "" {
			name = "(unnamed)"
		}
		out = append(out, fmt.Sprintf("attachment %s %s %d bytes sha256 %s", name, a.ContentType, a.Size, a.SHA256))
	}
	if len(m.Anomalies) > 0 {
		out = append(out, "anomalies: "+strings.Join(m.Anomalies, ", "))
	}
	return out
}

func wrapAngle(a []string) []string {
	out := make([]string, len(a))
	for i, s := range a {
		out[i] = "<" + s + ">"
	}
	return out
}

func (v *View) status() string {
	if v.editing {
		return " filter: " + v.Filter + "▏  (Enter keeps, Esc cancels)"
	}
	st := "decoding"
	if v.snap.Done {
		st = "done"
		if v.snap.Err != nil {
			st = "stopped: " + v.snap.Err.Error()
		}
	}
	if v.snap.Progress != "" && !v.snap.Done {
		st += " " + v.snap.Progress
	}
	out := fmt.Sprintf(" %s | %d sessions, %d records", st, v.snap.Total, v.snap.Records)
	if v.snap.Dropped > 0 {
		out += fmt.Sprintf(", %d oldest dropped", v.snap.Dropped)
	}
	return out + " | ↑↓/jk PgUp/PgDn move, Tab/Enter pane, / filter, Esc clear, q quit"
}

// put writes str at (x, y), clipped to width cells, with control
// characters made visible so that captured bytes cannot reach the terminal.
func put(s tcell.Screen, x, y, width int, str string, st tcell.Style) {
	limit := x + width
	str = sanitize(str)
	for str != "" && x < limit {
		rest, w := s.Put(x, y, str, st)
		if w == 0 {
			break
		}
		if x+w > limit {
			s.Put(x, y, " ", st)
			break
		}
		str, x = rest, x+w
	}
}

func fill(s tcell.Screen, x, y, width int, st tcell.Style) {
	for i := 0; i < width; i++ {
		s.SetContent(x+i, y, ' ', nil, st)
	}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			return '?'
		}
		return r
	}, s)
}
