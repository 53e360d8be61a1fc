package tui

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/mailtap/mailtap/decode/sink"
)

// Mode is what fills the screen between the tab row and the status line.
type Mode uint8

const (
	ModeSessions   Mode = iota // the session table (initial)
	ModeCreds                  // every authentication attempt
	ModeAnomalies              // every anomaly
	ModeTranscript             // the selected session as a ladder
	ModeMessage                // one message of the selected session
	nModes
)

var modeNames = [nModes]string{"Sessions", "Credentials", "Anomalies", "Transcript", "Message"}

// shortModeNames label the tabs on a narrow screen.
var shortModeNames = [nModes]string{"Sess", "Creds", "Anom", "Trans", "Msg"}

// modeKeys are the keys of the tabs, in tab order.
var modeKeys = [nModes]rune{'1', '2', '3', 't', 'm'}

func (m Mode) String() string { return modeNames[m] }

// View is the UI state: mode, selection, scroll positions, filter, sort,
// prompt. It is used on the UI goroutine only.
type View struct {
	m *Model

	Mode Mode
	help bool

	FilterText string
	filter     *Filter
	editing    bool // typing the filter after "/"
	prevFilter string

	// prompt, when set, takes the keys: a file name to save to.
	prompt *prompt
	notice string // shown on the status line until the next key

	sortCol  int
	sortDesc bool

	selID   uint64 // selected session, followed across updates
	rows    []*Session
	snap    Snapshot
	creds   []Cred
	anoms   []Anomaly
	panes   [nModes]pane
	helpP   pane
	cols    []colPos // header cells of the session table, for clicks
	tabs    []tabPos
	w, h    int
	compact bool // screen too small for anything but a note

	// Transcript: folds opened (by message index: steps move when the
	// greeting comes first at the end).
	open map[int]bool
	// Message view: which message, its parse (cached), the part shown as
	// text.
	msgIdx   int
	parsed   *Parsed
	parsedOf msgKey
	textPart int
	// messageLines' cache.
	msgLines   []line
	msgLinesOf msgLinesKey

	rate       float64 // packets per second
	lastPkts   uint64
	lastPktsAt time.Time

	quit bool
}

type msgKey struct {
	id  uint64
	idx int
	ok  bool
}

type colPos struct{ x0, x1, col int }
type tabPos struct {
	x0, x1 int
	mode   Mode
}

type prompt struct {
	label string
	input string
	do    func(string) string // returns the notice
}

// NewView returns a view of m showing the session table.
func NewView(m *Model) *View {
	v := &View{m: m, filter: ParseFilter(""), open: map[int]bool{}, textPart: -1}
	v.Refresh()
	return v
}

// Refresh takes a new snapshot of the model.
func (v *View) Refresh() {
	v.snap = v.m.Snapshot(v.filter, v.selID)
	v.rows = v.rows[:0]
	for i := range v.snap.Sessions {
		v.rows = append(v.rows, &v.snap.Sessions[i])
	}
	v.sortRows()
	p := &v.panes[ModeSessions]
	found := false
	for i, s := range v.rows {
		if s.ID == v.selID {
			if p.cur != i {
				p.setCur(i)
			}
			found = true
			break
		}
	}
	if !found && len(v.rows) > 0 {
		v.selectRow(clamp(p.cur, 0, len(v.rows)-1))
	}
	if v.Mode == ModeCreds {
		v.creds = v.m.Creds(v.filter)
	}
	if v.Mode == ModeAnomalies {
		v.anoms = v.m.Anomalies(v.filter)
	}
	st := v.snap.Stats
	now := time.Now()
	if v.lastPktsAt.IsZero() {
		v.lastPkts, v.lastPktsAt = st.Packets, now
	} else if d := now.Sub(v.lastPktsAt); d >= time.Second && (st.Packets != v.lastPkts || d >= 5*time.Second) {
		// The counters come in steps (a file's progress callback, the
		// live ticker): measure from step to step.
		v.rate = float64(st.Packets-v.lastPkts) / d.Seconds()
		v.lastPkts, v.lastPktsAt = st.Packets, now
	}
}

// selectRow makes row i of the table the selected session.
func (v *View) selectRow(i int) {
	if i < 0 || i >= len(v.rows) {
		return
	}
	p := &v.panes[ModeSessions]
	p.setCur(i)
	if v.rows[i].ID != v.selID {
		v.selID = v.rows[i].ID
		v.open = map[int]bool{}
		v.msgIdx, v.textPart, v.parsed = 0, -1, nil
		v.panes[ModeTranscript].reset()
		v.panes[ModeMessage].reset()
		v.snap = v.m.Snapshot(v.filter, v.selID)
		v.rows = v.rows[:0]
		for i := range v.snap.Sessions {
			v.rows = append(v.rows, &v.snap.Sessions[i])
		}
		v.sortRows()
	}
}

// Selected returns the selected session (with its details), or nil.
func (v *View) Selected() *Session {
	if v.snap.Selected < 0 {
		return nil
	}
	return &v.snap.Sessions[v.snap.Selected]
}

// Quit reports whether the user asked to quit.
func (v *View) Quit() bool { return v.quit }

// SetMode switches the view (as its key or tab click does).
func (v *View) SetMode(m Mode) {
	v.Mode = m
	v.help = false
	v.Refresh()
}

// SetFilter applies a filter expression.
func (v *View) SetFilter(f string) {
	v.FilterText = f
	v.filter = ParseFilter(f)
	v.Refresh()
}

// focused returns the pane the keys scroll.
func (v *View) focused() *pane {
	if v.help {
		return &v.helpP
	}
	return &v.panes[v.Mode]
}

// HandleKey applies one key press. The caller redraws afterwards.
func (v *View) HandleKey(ev *tcell.EventKey) {
	v.notice = ""
	if ev.Key() == tcell.KeyCtrlC {
		v.quit = true
		return
	}
	if v.prompt != nil {
		v.promptKey(ev)
		return
	}
	if v.editing {
		v.editKey(ev)
		return
	}
	p := v.focused()
	switch ev.Key() {
	case tcell.KeyUp:
		v.move(p, -1)
	case tcell.KeyDown:
		v.move(p, 1)
	case tcell.KeyPgUp:
		v.scroll(p, -p.page())
	case tcell.KeyPgDn:
		v.scroll(p, p.page())
	case tcell.KeyHome:
		v.move(p, -1<<30)
	case tcell.KeyEnd:
		v.move(p, 1<<30)
	case tcell.KeyEnter:
		v.activate()
	case tcell.KeyTab:
		v.SetMode((v.Mode + 1) % nModes)
	case tcell.KeyBacktab:
		v.SetMode((v.Mode + nModes - 1) % nModes)
	case tcell.KeyEsc, tcell.KeyBackspace, tcell.KeyBackspace2:
		switch {
		case v.help:
			v.help = false
		case v.Mode == ModeMessage:
			v.SetMode(ModeTranscript)
		case v.Mode != ModeSessions:
			v.SetMode(ModeSessions)
		case v.FilterText != "" && ev.Key() == tcell.KeyEsc:
			v.SetFilter("")
		}
	case tcell.KeyRune:
		v.runeKey(p, ev.Rune())
	}
}

func (v *View) runeKey(p *pane, r rune) {
	for i, k := range modeKeys {
		if r == k {
			v.SetMode(Mode(i))
			return
		}
	}
	switch r {
	case 'q':
		v.quit = true
	case '?', 'h':
		v.help = !v.help
		v.helpP.reset()
	case 'k':
		v.move(p, -1)
	case 'j':
		v.move(p, 1)
	case 'g':
		v.move(p, -1<<30)
	case 'G':
		v.move(p, 1<<30)
	case ' ':
		v.scroll(p, p.page())
	case 'b':
		v.scroll(p, -p.page())
	case '/':
		v.editing, v.prevFilter = true, v.FilterText
	case 's':
		if v.Mode == ModeSessions {
			v.sortCol = (v.sortCol + 1) % len(columns)
			v.Refresh()
		} else if v.Mode == ModeMessage {
			v.savePartPrompt()
		}
	case 'S', 'r':
		if v.Mode == ModeSessions {
			v.sortDesc = !v.sortDesc
			v.Refresh()
		}
	case 'e':
		if v.Mode == ModeMessage || v.Mode == ModeTranscript {
			v.saveMessagePrompt()
		}
	case 'n', ']':
		v.nextMessage(1)
	case 'p', '[':
		v.nextMessage(-1)
	}
}

// move moves the cursor of p; in the session table it moves the
// selection.
func (v *View) move(p *pane, d int) {
	p.moveCur(d)
	if !v.help && v.Mode == ModeSessions {
		v.selectRow(clamp(p.cur, 0, len(v.rows)-1))
	}
}

func (v *View) scroll(p *pane, d int) {
	p.scroll(d)
	if !v.help && v.Mode == ModeSessions {
		v.selectRow(clamp(p.cur, 0, len(v.rows)-1))
	}
}

// activate is Enter (or a click on the selected line): open what the
// cursor is on.
func (v *View) activate() {
	if v.help {
		v.help = false
		return
	}
	switch v.Mode {
	case ModeSessions:
		if v.Selected() != nil {
			v.SetMode(ModeTranscript)
		}
	case ModeCreds, ModeAnomalies:
		p := &v.panes[v.Mode]
		var id uint64
		switch {
		case v.Mode == ModeCreds && p.cur < len(v.creds):
			id = v.creds[p.cur].Session
		case v.Mode == ModeAnomalies && p.cur < len(v.anoms):
			id = v.anoms[p.cur].Session
		default:
			return
		}
		for i, s := range v.rows {
			if s.ID == id {
				v.selectRow(i)
				v.SetMode(ModeTranscript)
				return
			}
		}
		v.notice = fmt.Sprintf("session #%d is not in the list (filtered out or dropped)", id)
	case ModeTranscript:
		v.toggleFold()
	case ModeMessage:
		v.openPart()
	}
}

func (v *View) editKey(ev *tcell.EventKey) {
	switch ev.Key() {
	case tcell.KeyEnter:
		v.editing = false
	case tcell.KeyEsc:
		v.editing = false
		v.SetFilter(v.prevFilter)
	case tcell.KeyBackspace, tcell.KeyBackspace2:
		if r := []rune(v.FilterText); len(r) > 0 {
			v.SetFilter(string(r[:len(r)-1]))
		}
	case tcell.KeyCtrlU:
		v.SetFilter("")
	case tcell.KeyRune:
		if len(v.FilterText) < 200 {
			v.SetFilter(v.FilterText + string(ev.Rune()))
		}
	}
}

func (v *View) promptKey(ev *tcell.EventKey) {
	pr := v.prompt
	switch ev.Key() {
	case tcell.KeyEnter:
		v.prompt = nil
		if strings.TrimSpace(pr.input) != "" {
			v.notice = pr.do(pr.input)
		}
	case tcell.KeyEsc:
		v.prompt = nil
		v.notice = "not saved"
	case tcell.KeyBackspace, tcell.KeyBackspace2:
		if r := []rune(pr.input); len(r) > 0 {
			pr.input = string(r[:len(r)-1])
		}
	case tcell.KeyCtrlU:
		pr.input = ""
	case tcell.KeyRune:
		if len(pr.input) < 1000 {
			pr.input += string(ev.Rune())
		}
	}
}

// HandleMouse applies one mouse event: the wheel scrolls what is under
// it, a click on a tab switches views, on a column header sorts, on a
// line moves the cursor there and on the cursor's line opens it.
func (v *View) HandleMouse(ev *tcell.EventMouse) {
	x, y := ev.Position()
	p := v.focused()
	switch b := ev.Buttons(); {
	case b&tcell.WheelUp != 0:
		v.scroll(p, -3)
	case b&tcell.WheelDown != 0:
		v.scroll(p, 3)
	case b&tcell.Button1 != 0:
		if v.prompt != nil || v.editing {
			return
		}
		v.notice = ""
		if y == 0 {
			if x >= v.w-8 {
				v.help = !v.help
				v.helpP.reset()
				return
			}
			for _, t := range v.tabs {
				if x >= t.x0 && x < t.x1 {
					v.SetMode(t.mode)
					return
				}
			}
			return
		}
		if !v.help && v.Mode == ModeSessions && y == 1 {
			for _, c := range v.cols {
				if x >= c.x0 && x < c.x1 {
					if v.sortCol == c.col {
						v.sortDesc = !v.sortDesc
					} else {
						v.sortCol, v.sortDesc = c.col, false
					}
					v.Refresh()
				}
			}
			return
		}
		i := p.rowLine(y)
		if i < 0 {
			return
		}
		if i == p.cur {
			v.activate()
			return
		}
		p.cur = i
		if !v.help && v.Mode == ModeSessions {
			v.selectRow(i)
		}
	}
}

// nextMessage moves the message view to the next (d=1) or previous
// message of the session.
func (v *View) nextMessage(d int) {
	s := v.Selected()
	if s == nil || len(s.Messages) == 0 {
		return
	}
	v.msgIdx = clamp(v.msgIdx+d, 0, len(s.Messages)-1)
	v.textPart = -1
	v.panes[ModeMessage].reset()
}

// Layout and drawing.

var (
	styleTitle    = tcell.StyleDefault.Bold(true)
	styleTab      = tcell.StyleDefault.Reverse(true)
	styleTabOn    = tcell.StyleDefault.Bold(true)
	styleSelected = tcell.StyleDefault.Reverse(true)
	styleStatus   = tcell.StyleDefault.Reverse(true)
	styleDim      = tcell.StyleDefault.Dim(true)
	styleHeader   = tcell.StyleDefault.Bold(true).Underline(true)
	styleBad      = tcell.StyleDefault.Foreground(tcell.ColorRed).Bold(true)
	styleGood     = tcell.StyleDefault.Foreground(tcell.ColorGreen)
	styleWarn     = tcell.StyleDefault.Foreground(tcell.ColorYellow)
	styleAnom     = tcell.StyleDefault.Foreground(tcell.ColorFuchsia).Bold(true)
	styleClient   = tcell.StyleDefault.Foreground(tcell.ColorTeal)
	styleFold     = tcell.StyleDefault.Foreground(tcell.ColorBlue).Bold(true)
)

// Draw renders v on s. It must run on the goroutine that owns s.
func (v *View) Draw(s tcell.Screen) {
	w, h := s.Size()
	v.w, v.h = w, h
	s.Clear()
	s.HideCursor()
	v.compact = w < 30 || h < 6
	if v.compact {
		drawRow(s, 0, 0, w, []seg{txt("too small for mailtap tui", tcell.StyleDefault)}, tcell.StyleDefault)
		drawRow(s, 0, h-1, w, []seg{txt(v.status(), styleStatus)}, styleStatus)
		s.Show()
		return
	}
	v.drawTabs(s)
	body := h - 2 // between the tab row and the status line
	if v.help {
		v.helpP.draw(s, 1, body, w, v.helpLines(w), false)
	} else {
		switch v.Mode {
		case ModeSessions:
			v.drawSessions(s, body)
		case ModeCreds:
			v.drawTitled(s, body, v.credsTitle(), v.credLines(w), true)
		case ModeAnomalies:
			v.drawTitled(s, body, v.anomTitle(), v.anomLines(w), true)
		case ModeTranscript:
			v.drawTitled(s, body, v.transcriptTitle(), v.transcriptLines(w), true)
		case ModeMessage:
			v.drawTitled(s, body, v.messageTitle(), v.messageLines(w), true)
		}
	}
	st := v.status()
	drawRow(s, 0, h-1, w, []seg{txt(st, styleStatus)}, styleStatus)
	if v.prompt != nil || v.editing {
		s.ShowCursor(min(width(safeText(st)), w-1), h-1)
	}
	s.Show()
}

// drawTitled draws a title row and a pane under it.
// The title wraps to at most two rows rather than being cut.
func (v *View) drawTitled(s tcell.Screen, body int, title []seg, lines []line, mark bool) {
	rows := wrapSegs(v.w, 1, title)
	if len(rows) > 2 || body < 8 {
		rows = rows[:1]
	}
	for i, r := range rows {
		drawRow(s, 0, 1+i, v.w, r, styleTitle)
	}
	v.panes[v.Mode].draw(s, 1+len(rows), body-len(rows), v.w, lines, mark)
}

func (v *View) drawTabs(s tcell.Screen) {
	v.tabs = v.tabs[:0]
	x := 0
	counts := [nModes]string{fmt.Sprintf(" %d", len(v.rows)), "", "", "", ""}
	if !v.filter.Empty() {
		counts[ModeSessions] = fmt.Sprintf(" %d of %d", len(v.rows), v.snap.Total)
	}
	if sel := v.Selected(); sel != nil {
		counts[ModeTranscript] = fmt.Sprintf(" #%d", sel.ID)
		if len(sel.Messages) > 0 {
			counts[ModeMessage] = fmt.Sprintf(" %d/%d", clamp(v.msgIdx, 0, len(sel.Messages)-1)+1, len(sel.Messages))
		}
	}
	names := modeNames
	total := 0
	for i := Mode(0); i < nModes; i++ {
		total += width(fmt.Sprintf(" %c %s%s ", modeKeys[i], names[i], counts[i]))
	}
	if total+8 > v.w {
		names = shortModeNames // every tab stays on screen, and clickable
	}
	for i := Mode(0); i < nModes; i++ {
		label := fmt.Sprintf(" %c %s%s ", modeKeys[i], names[i], counts[i])
		st := styleTab
		if i == v.Mode && !v.help {
			st = styleTabOn
		}
		wd := width(label)
		if x+wd > v.w {
			break
		}
		drawRow(s, x, 0, wd, []seg{{label, st}}, st)
		v.tabs = append(v.tabs, tabPos{x, x + wd, i})
		x += wd
	}
	help := " ? keys "
	rest := v.w - x
	if rest > 0 {
		var segs []seg
		if rest >= width(help)+1 {
			segs = append(segs, seg{strings.Repeat(" ", rest-width(help)), styleTab}, seg{help, styleTab})
		}
		drawRow(s, x, 0, rest, segs, styleTab)
	}
}

// The session table.

// column is one column of the session table. Columns with flex take the
// width left; the others are as wide as their widest cell. drop orders
// which go first when the screen is narrow (1 first; 0 never).
type column struct {
	name  string
	flex  int // share of the width left (0: fixed)
	min   int // narrowest a flex column is shown
	drop  int
	cell  func(s *Session) (string, tcell.Style)
	less  func(a, b *Session) bool
	right bool
	// alt, when set, is a narrower form tried before the column drops.
	alt     func(s *Session) (string, tcell.Style)
	altName string
}

var columns = []column{
	{name: "time", drop: 3, cell: func(s *Session) (string, tcell.Style) {
		return s.Start.UTC().Format("15:04:05"), styleDim
	}, less: func(a, b *Session) bool { return a.Start.Before(b.Start) }},
	{name: "#", drop: 1, right: true, cell: func(s *Session) (string, tcell.Style) {
		return fmt.Sprint(s.ID), styleDim
	}, less: func(a, b *Session) bool { return a.ID < b.ID }},
	{name: "proto", cell: func(s *Session) (string, tcell.Style) {
		return string(s.Proto), tcell.StyleDefault
	}, less: func(a, b *Session) bool { return a.Proto < b.Proto }},
	{name: "client → server", drop: 7, cell: func(s *Session) (string, tcell.Style) {
		return s.Client + " → " + s.Server, tcell.StyleDefault
	}, altName: "client", alt: func(s *Session) (string, tcell.Style) {
		return s.Client, tcell.StyleDefault
	}, less: func(a, b *Session) bool {
		if a.Client != b.Client {
			return a.Client < b.Client
		}
		return a.Server < b.Server
	}},
	{name: "user", drop: 8, cell: userCell, less: func(a, b *Session) bool { return a.User < b.User }},
	{name: "what happened", flex: 3, min: 20, drop: 6, cell: func(s *Session) (string, tcell.Style) {
		if s.Rejected {
			return s.What, styleWarn
		}
		return s.What, tcell.StyleDefault
	}, less: func(a, b *Session) bool { return a.What < b.What }},
	{name: "subject", flex: 2, min: 10, drop: 2, cell: func(s *Session) (string, tcell.Style) {
		return s.Subject, tcell.StyleDefault
	}, less: func(a, b *Session) bool { return a.Subject < b.Subject }},
	{name: "state", drop: 4, cell: func(s *Session) (string, tcell.Style) {
		switch s.State {
		case "complete":
			return s.State, tcell.StyleDefault
		case "open":
			return s.State, styleGood
		}
		return s.State, styleWarn
	}, less: func(a, b *Session) bool { return a.State < b.State }},
	{name: "anom", drop: 5, right: true, cell: func(s *Session) (string, tcell.Style) {
		if s.NAnomalies == 0 {
			return "·", styleDim
		}
		return fmt.Sprint(s.NAnomalies), styleAnom
	}, less: func(a, b *Session) bool { return a.NAnomalies < b.NAnomalies }},
}

func userCell(s *Session) (string, tcell.Style) {
	u := s.User
	mark := ""
	st := tcell.StyleDefault
	switch {
	case s.AuthFailed && (s.AuthOK == nil || !*s.AuthOK):
		mark, st = "✗", styleBad
	case s.AuthFailed:
		mark, st = "✗✓", styleWarn // failed, then succeeded
	case s.AuthOK != nil && *s.AuthOK:
		mark = "✓"
	case s.AuthOK != nil:
		mark, st = "✗", styleBad
	}
	if mark == "" {
		return u, st
	}
	if u == "" {
		u = "?"
	}
	return u + " " + mark, st
}

// sortRows orders the table by the sort column (ties by arrival).
func (v *View) sortRows() {
	c := columns[v.sortCol]
	if v.sortCol == 0 && !v.sortDesc {
		return // arrival order is start order, nearly: keep it stable
	}
	sort.SliceStable(v.rows, func(i, j int) bool {
		if v.sortDesc {
			return c.less(v.rows[j], v.rows[i])
		}
		return c.less(v.rows[i], v.rows[j])
	})
}

// tableLayout picks the columns shown at width w and their widths: fixed
// columns as wide as their widest cell (so an address or a user is never
// cut), flex columns share the rest; when that does not fit, the column
// with the lowest drop rank goes first.
// maxFixedWidth bounds a fixed column: a 2000-character user name from
// a hostile client must not push every other column off the screen.
// Real users, addresses and IPv6 endpoints fit.
const maxFixedWidth = 100

func tableLayout(rows []*Session, w int) (shown []int, widths []int, alt []bool) {
	alt = make([]bool, len(columns))
	natural := make([]int, len(columns))
	measure := func(i int) {
		c := columns[i]
		cell, name := c.cell, c.name
		if alt[i] {
			cell, name = c.alt, c.altName
		}
		natural[i] = width(name) + 1 // room for the sort mark
		if c.flex > 0 {
			natural[i] = c.min
			return
		}
		for _, s := range rows {
			t, _ := cell(s)
			natural[i] = max(natural[i], min(width(safeText(t)), maxFixedWidth))
		}
	}
	for i := range columns {
		measure(i)
	}
	on := make([]bool, len(columns))
	for i := range on {
		on[i] = true
	}
	need := func() int {
		n := 0
		for i, ok := range on {
			if ok {
				n += natural[i] + 1
			}
		}
		return n - 1
	}
	for need() > w {
		drop, rank := -1, 1<<30
		for i, c := range columns {
			if on[i] && c.drop > 0 && c.drop < rank {
				drop, rank = i, c.drop
			}
		}
		if drop < 0 {
			break
		}
		if columns[drop].alt != nil && !alt[drop] {
			alt[drop] = true
			measure(drop)
			continue
		}
		on[drop] = false
	}
	// A column dropped for an alternative form that made room for it
	// comes back when the full form fits again.
	for i := range columns {
		if on[i] && alt[i] {
			alt[i] = false
			measure(i)
			if need() > w {
				alt[i] = true
				measure(i)
			}
		}
	}
	left := w - need()
	flexSum := 0
	for i, c := range columns {
		if on[i] {
			flexSum += c.flex
		}
	}
	for i, c := range columns {
		if !on[i] {
			continue
		}
		wd := natural[i]
		if c.flex > 0 && flexSum > 0 {
			wd += left * c.flex / flexSum
		}
		shown = append(shown, i)
		widths = append(widths, wd)
	}
	// Rounding: the last flex column takes what is left.
	total := len(widths) - 1
	for _, wd := range widths {
		total += wd
	}
	for k := len(shown) - 1; k >= 0 && total < w; k-- {
		if columns[shown[k]].flex > 0 {
			widths[k] += w - total
			break
		}
	}
	return shown, widths, alt
}

func (v *View) drawSessions(s tcell.Screen, body int) {
	shown, widths, alt := tableLayout(v.rows, v.w)
	v.cols = v.cols[:0]
	var head []seg
	x := 0
	for k, i := range shown {
		name := columns[i].name
		if alt[i] {
			name = columns[i].altName
		}
		if i == v.sortCol {
			if v.sortDesc {
				name += "▼"
			} else {
				name += "▲"
			}
		}
		head = append(head, seg{pad(name, widths[k], false), styleHeader})
		if k < len(shown)-1 {
			head = append(head, seg{" ", tcell.StyleDefault})
		}
		v.cols = append(v.cols, colPos{x, x + widths[k] + 1, i})
		x += widths[k] + 1
	}
	drawRow(s, 0, 1, v.w, head, tcell.StyleDefault)
	// One row per session: only the rows on screen are built (the same
	// window pane.draw will pick), the others stay empty.
	p := &v.panes[ModeSessions]
	h := body - 1
	top := p.top
	if p.ensure {
		cur := clamp(p.cur, 0, len(v.rows)-1)
		top = clamp(top, cur-h+1, cur)
	}
	top = clamp(top, 0, len(v.rows)-h)
	lines := make([]line, len(v.rows))
	for r := top; r < min(top+h, len(v.rows)); r++ {
		sess := v.rows[r]
		var segs []seg
		for k, i := range shown {
			c := columns[i]
			cell := c.cell
			if alt[i] {
				cell = c.alt
			}
			t, st := cell(sess)
			t = safeText(t)
			// Text columns cut after a whole word; a fixed column is cut
			// only past maxFixedWidth (a hostile value), by cells.
			cut := pad(t, widths[k], c.flex > 0)
			if c.right {
				cut = strings.Repeat(" ", max(0, widths[k]-width(t))) + fit(t, widths[k], true)
			}
			segs = append(segs, seg{cut, st})
			if k < len(shown)-1 {
				segs = append(segs, seg{" ", tcell.StyleDefault})
			}
		}
		lines[r] = oneRow(-1, segs...)
	}
	p.draw(s, 2, h, v.w, lines, true)
	if len(v.rows) == 0 {
		msg := "no sessions yet"
		if v.snap.Done {
			msg = "no sessions"
		}
		if !v.filter.Empty() {
			msg = "no session matches the filter"
		}
		drawRow(s, 1, 2, v.w-1, []seg{{msg, styleDim}}, tcell.StyleDefault)
	}
}

// Credentials and anomalies.

func (v *View) credsTitle() []seg {
	t := fmt.Sprintf(" %d authentication attempts", len(v.creds))
	if !v.m.ShowSecrets() {
		t += " (secrets hidden; --show-secrets shows them)"
	}
	return []seg{{t, styleTitle}}
}

func (v *View) credLines(w int) []line {
	show := v.m.ShowSecrets()
	out := make([]line, 0, len(v.creds))
	for _, c := range v.creds {
		res, st := "?", styleWarn
		if c.Success != nil {
			if *c.Success {
				res, st = "✓ ok", styleGood
			} else {
				res, st = "✗ FAILED", styleBad
			}
		}
		user := c.User
		if user == "" {
			user = "-"
		}
		segs := []seg{
			txt(c.TS.UTC().Format("15:04:05")+" ", styleDim),
			txt(fmt.Sprintf("#%d %s %s → %s  ", c.Session, c.Proto, c.Client, c.Server), tcell.StyleDefault),
			txt(c.Mechanism+" ", styleTitle),
			txt("user ", styleDim), wire(user, tcell.StyleDefault), txt("  ", tcell.StyleDefault),
			txt(res, st),
		}
		if show {
			secret := c.Password
			if c.Response != "" {
				secret = strings.TrimSpace(c.Challenge + " " + c.Response)
			}
			if secret != "" {
				segs = append(segs, txt("  secret ", styleDim), wire(secret, styleWarn))
			}
		}
		out = append(out, wrapLine(w, 4, 0, segs...))
	}
	if len(out) == 0 {
		out = append(out, oneRow(-1, txt(" no authentication seen", styleDim)))
	}
	return out
}

func (v *View) anomTitle() []seg {
	return []seg{{fmt.Sprintf(" %d anomalies (Enter opens the session)", len(v.anoms)), styleTitle}}
}

func (v *View) anomLines(w int) []line {
	out := make([]line, 0, len(v.anoms))
	for _, a := range v.anoms {
		out = append(out, wrapLine(w, 4, 0,
			txt(fmt.Sprintf("#%d %s %s  ", a.Session, a.Proto, a.Client), tcell.StyleDefault),
			wire(a.Where+": ", styleDim), wire(a.Text, styleAnom)))
	}
	if len(out) == 0 {
		out = append(out, oneRow(-1, txt(" no anomalies", styleDim)))
	}
	return out
}

// The transcript ladder.

func (v *View) transcriptTitle() []seg {
	s := v.Selected()
	if s == nil {
		return []seg{{" no session selected", styleTitle}}
	}
	u, ust := userCell(s)
	out := []seg{txt(fmt.Sprintf(" #%d %s %s → %s  %s  ", s.ID, s.Proto, s.Client, s.Server, s.State), styleTitle)}
	if u != "" {
		out = append(out, wire(u, ust.Bold(true)))
	}
	if s.Helo != "" {
		out = append(out, txt("  helo ", styleTitle), wire(s.Helo, styleTitle))
	}
	if s.DroppedSteps > 0 {
		out = append(out, txt(fmt.Sprintf("  (%d steps not kept)", s.DroppedSteps), styleDim))
	}
	return out
}

// maxFoldLines bounds an opened fold in the transcript.
const maxFoldLines = 500

func (v *View) transcriptLines(w int) []line {
	s := v.Selected()
	if s == nil {
		return nil
	}
	const gut = 9 // "+12.345s "
	lat := 10     // " → 123ms "
	if w < 60 {
		lat = 0
	}
	colW := max(8, (w-gut-2-lat)/2)
	var start time.Time
	if len(s.Steps) > 0 {
		start = s.Steps[0].TS
	}
	out := make([]line, 0, len(s.Steps)+2)
	out = append(out, oneRow(-1, txt(pad(" time", gut, false)+"  "+pad("client", colW, false)+strings.Repeat(" ", lat)+"server", styleHeader)))
	for i, st := range s.Steps {
		off := ""
		if !st.TS.IsZero() && !start.IsZero() {
			off = fmt.Sprintf("+%.3fs", st.TS.Sub(start).Seconds())
		}
		if st.Msg >= 0 && st.Msg < len(s.Messages) {
			out = append(out, v.foldLine(w, gut, i, st.Msg, &s.Messages[st.Msg]))
			continue
		}
		// A pipelined group: the commands sent without waiting, and the
		// one that opened the group.
		piped := st.Pipelined
		for j := i + 1; !piped && j < len(s.Steps); j++ {
			if s.Steps[j].Msg < 0 {
				piped = s.Steps[j].Pipelined && st.Client != ""
				break
			}
		}
		pipe := "  "
		if piped {
			pipe = "┃ "
		}
		left := wrapSegs(colW, 2, []seg{wire(st.Client, styleClient)})
		sst := tcell.StyleDefault
		switch st.OK {
		case 1:
			sst = styleGood
		case -1:
			sst = styleBad
		}
		right := wrapSegs(max(8, w-gut-2-colW-lat), 2, []seg{wire(st.Server, sst)})
		latS := ""
		if st.LatencyMS != nil && lat > 0 {
			latS = fmtLatency(*st.LatencyMS)
		}
		n := max(len(left), len(right))
		rows := make([][]seg, n)
		for r := 0; r < n; r++ {
			g, pp, l := "", "", ""
			if r == 0 {
				g, l = off, latS
			}
			pp = pipe
			row := []seg{{pad(g, gut, false), styleDim}, {pp, styleWarn}}
			var lrow []seg
			if r < len(left) {
				lrow = left[r]
			}
			row = append(row, padSegs(lrow, colW)...)
			if lat > 0 {
				arrow := ""
				if r == 0 && st.Client != "" && st.Server != "" {
					arrow = "→"
				}
				row = append(row, seg{pad(" "+arrow+" "+l, lat, false), styleDim})
			}
			if r < len(right) {
				row = append(row, right[r]...)
			}
			rows[r] = row
		}
		out = append(out, line{rows: rows, act: -1})
	}
	if len(s.Steps) == 0 {
		out = append(out, oneRow(-1, txt(" no commands recorded yet (decoded with --level transactions, or the session has just opened)", styleDim)))
	}
	return out
}

// fmtLatency fits a latency in 6 cells.
func fmtLatency(ms float64) string {
	switch {
	case ms < 100:
		return fmt.Sprintf("%.1fms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0fms", ms)
	case ms < 100000:
		return fmt.Sprintf("%.2fs", ms/1000)
	}
	return fmt.Sprintf("%.0fs", ms/1000)
}

// padSegs pads a row of segments to w cells.
func padSegs(r []seg, w int) []seg {
	n := 0
	for _, s := range r {
		n += width(s.text)
	}
	if n < w {
		r = append(append([]seg(nil), r...), seg{strings.Repeat(" ", w-n), tcell.StyleDefault})
	}
	return r
}

// foldLine is a message folded to one line in the ladder; opened, the
// raw message follows (at most maxFoldLines lines).
func (v *View) foldLine(w, gut, step, msg int, m *Message) line {
	open := v.open[msg]
	mark := "▸"
	if open {
		mark = "▾"
	}
	// No time: the record's is the transaction's start, out of order
	// with the commands around it.
	segs := []seg{{strings.Repeat(" ", gut+2), styleDim}, {mark + " ", styleFold}, txt(m.Title, styleFold)}
	if m.Message != nil {
		segs = append(segs, txt(fmt.Sprintf("  %d bytes", m.Size), styleDim))
		if m.Subject != "" {
			segs = append(segs, txt("  subject ", styleDim), wire(m.Subject, tcell.StyleDefault))
		}
		if n := len(m.Attachments); n > 0 {
			segs = append(segs, txt(fmt.Sprintf("  %d attachment(s)", n), styleDim))
		}
	}
	if !open {
		segs = append(segs, txt("  (Enter opens, m: message view)", styleDim))
	}
	l := wrapLine(w, gut+4, step, segs...)
	if !open {
		return l
	}
	raw, err := v.readBody(m)
	if err != nil {
		l.rows = append(l.rows, []seg{txt(strings.Repeat(" ", gut+4)+err.Error(), styleDim)})
		return l
	}
	lines := strings.Split(string(raw), "\n")
	more := 0
	if len(lines) > maxFoldLines {
		more = len(lines) - maxFoldLines
		lines = lines[:maxFoldLines]
	}
	for _, ln := range lines {
		l.rows = append(l.rows, wrapSegs(w, gut+4, []seg{{strings.Repeat(" ", gut+4), tcell.StyleDefault}, wire(strings.TrimSuffix(ln, "\r"), tcell.StyleDefault)})...)
	}
	if more > 0 {
		l.rows = append(l.rows, []seg{txt(fmt.Sprintf("%s… %d more lines (m: message view)", strings.Repeat(" ", gut+4), more), styleDim)})
	}
	return l
}

func (v *View) toggleFold() {
	s := v.Selected()
	p := &v.panes[ModeTranscript]
	if s == nil {
		return
	}
	step := p.cur - 1 // the header line comes first
	if step < 0 || step >= len(s.Steps) || s.Steps[step].Msg < 0 {
		return
	}
	k := s.Steps[step].Msg
	v.open[k] = !v.open[k]
	v.msgIdx = s.Steps[step].Msg
	v.textPart = -1
}

// readBody re-reads a message's raw bytes from the spill.
func (v *View) readBody(m *Message) ([]byte, error) {
	sp := v.m.Spill()
	if sp == nil {
		return nil, errors.New("message bodies are not kept in this run")
	}
	if !m.Body.Kept() {
		if m.Body.Cut {
			return nil, errors.New("message body not kept: the spill was full (--spill-max)")
		}
		return nil, errors.New("message body not kept")
	}
	b, err := sp.Read(m.Body, m.Body.Size)
	if err == nil && m.Body.Cut {
		err = fmt.Errorf("only the first %d bytes kept: the spill was full (--spill-max)", len(b))
	}
	return b, err
}

// The message view.

// current returns the message the message view shows, or nil.
func (v *View) current() *Message {
	s := v.Selected()
	if s == nil || len(s.Messages) == 0 {
		return nil
	}
	v.msgIdx = clamp(v.msgIdx, 0, len(s.Messages)-1)
	return &s.Messages[v.msgIdx]
}

// parse returns the parse of the current message, cached.
func (v *View) parse() (*Parsed, error) {
	m := v.current()
	if m == nil {
		return nil, errors.New("no message")
	}
	key := msgKey{v.selID, v.msgIdx, true}
	if v.parsedOf == key && v.parsed != nil {
		return v.parsed, nil
	}
	raw, err := v.readBody(m)
	if raw == nil {
		return nil, err
	}
	v.parsed, v.parsedOf = ParseMessage(raw), key
	return v.parsed, err
}

func (v *View) messageTitle() []seg {
	m := v.current()
	if m == nil {
		return []seg{{" no message in this session", styleTitle}}
	}
	s := v.Selected()
	return []seg{txt(fmt.Sprintf(" #%d message %d/%d: %s", s.ID, v.msgIdx+1, len(s.Messages), m.Title), styleTitle),
		txt("   n/p next/previous  Enter on a part shows it  s save part  e save .eml", styleDim)}
}

// Actions of message-view lines: act >= 0 is a part index.
const maxTextLines = 20000

func (v *View) messageLines(w int) []line {
	m := v.current()
	if m == nil {
		return nil
	}
	// A message does not change once recorded: its lines are built once
	// per width and part shown (a long text part is converted, split
	// and wrapped once, not at every frame).
	key := msgLinesKey{msgKey{v.selID, v.msgIdx, true}, v.textPart, w}
	if v.msgLinesOf == key && v.msgLines != nil {
		return v.msgLines
	}
	v.msgLines, v.msgLinesOf = v.buildMessageLines(m, w), key
	return v.msgLines
}

type msgLinesKey struct {
	msg      msgKey
	textPart int
	w        int
}

func (v *View) buildMessageLines(m *Message, w int) []line {
	var out []line
	kv := func(k string, val string, st tcell.Style) {
		out = append(out, wrapLine(w, 10, -1, txt(pad(k, 9, false)+" ", styleTitle), wire(val, st)))
	}
	if m.MailFrom != "" || len(m.RcptTo) > 0 {
		kv("MAIL FROM", "<"+m.MailFrom+">", tcell.StyleDefault)
		kv("RCPT TO", strings.Join(wrapAngle(m.RcptTo), ", "), tcell.StyleDefault)
	}
	if m.Message == nil {
		return append(out, oneRow(-1, txt("(no message body in the record)", styleDim)))
	}
	p, err := v.parse()
	out = append(out, oneRow(-1))
	if p != nil {
		for _, f := range p.Header {
			out = append(out, wrapLine(w, 4, -1, wire(f.Name+": ", styleTitle), wire(f.Value, tcell.StyleDefault)))
		}
	} else {
		kv("From:", m.From, tcell.StyleDefault)
		kv("To:", strings.Join(m.To, ", "), tcell.StyleDefault)
		if len(m.Cc) > 0 {
			kv("Cc:", strings.Join(m.Cc, ", "), tcell.StyleDefault)
		}
		kv("Subject:", m.Subject, tcell.StyleDefault)
		kv("Date:", m.Date, tcell.StyleDefault)
	}
	tr := ""
	if m.Truncated {
		tr = "  TRUNCATED"
	}
	out = append(out, oneRow(-1), wrapLine(w, 4, -1, txt(fmt.Sprintf("size %d bytes  sha256 %s%s", m.Size, m.SHA256, tr), styleDim)))
	if err != nil {
		out = append(out, wrapLine(w, 4, -1, txt(err.Error(), styleWarn)))
	}
	for _, a := range m.Anomalies {
		out = append(out, wrapLine(w, 4, -1, txt("anomaly: ", styleAnom), wire(a, styleAnom)))
	}
	if p == nil {
		// No body to re-read: the record's own summary of the parts.
		out = append(out, oneRow(-1), oneRow(-1, txt("Attachments (from the record)", styleHeader)))
		for _, a := range m.Attachments {
			out = append(out, wrapLine(w, 4, -1, txt("  "+a.ContentType+"  ", tcell.StyleDefault), wire(a.Filename, styleTitle),
				txt(fmt.Sprintf("  %d bytes  sha256 %s", a.Size, a.SHA256), styleDim)))
		}
		if m.TextPreview != "" {
			out = append(out, oneRow(-1), oneRow(-1, txt("Text preview (from the record)", styleHeader)))
			out = append(out, wrapLine(w, 0, -1, wire(m.TextPreview, tcell.StyleDefault)))
		}
		return out
	}
	out = append(out, oneRow(-1), oneRow(-1, txt(fmt.Sprintf("MIME tree: %d parts", len(p.Parts)), styleHeader)))
	for i, pt := range p.Parts {
		ind := strings.Repeat("  ", pt.Depth)
		segs := []seg{txt(fmt.Sprintf("%s%-5s ", ind, pt.Path), styleDim), txt(pt.ContentType, styleTitle)}
		if pt.Charset != "" {
			segs = append(segs, txt("; charset="+pt.Charset, tcell.StyleDefault))
		}
		if pt.Encoding != "" {
			segs = append(segs, txt("  "+pt.Encoding, styleDim))
		}
		if pt.Filename != "" {
			segs = append(segs, txt("  file ", styleDim), wire(pt.Filename, styleWarn))
		}
		if !pt.Multipart {
			segs = append(segs, txt(fmt.Sprintf("  %d bytes  sha256 %s", pt.Size, pt.SHA256), styleDim))
			if pt.Bad {
				segs = append(segs, txt("  (bad "+pt.Encoding+")", styleBad))
			}
		}
		act := i
		if pt.Multipart {
			act = -1
		}
		out = append(out, wrapLine(w, len(ind)+6, act, segs...))
	}
	if p.Err != nil {
		out = append(out, wrapLine(w, 4, -1, txt("parse stopped: "+p.Err.Error(), styleWarn)))
	}
	tp := v.textPart
	if tp < 0 || tp >= len(p.Parts) {
		tp = p.Text
	}
	out = append(out, oneRow(-1))
	if tp < 0 {
		return append(out, oneRow(-1, txt("no text part", styleDim)))
	}
	pt := &p.Parts[tp]
	enc := pt.Encoding
	if enc == "" {
		enc = "7bit"
	}
	cs := pt.Charset
	if cs == "" {
		cs = "us-ascii"
	}
	out = append(out, oneRow(-1, txt(fmt.Sprintf("Part %s (%s, charset %s, %s), decoded:", pt.Path, pt.ContentType, cs, enc), styleHeader)))
	if !strings.HasPrefix(pt.ContentType, "text/") && pt.ContentType != "message/rfc822" && !isText(pt.Data) {
		return append(out, oneRow(-1, txt(fmt.Sprintf("(binary, %d bytes: s saves it)", pt.Size), styleDim)))
	}
	text := TextOf(pt)
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	more := 0
	if len(lines) > maxTextLines {
		more, lines = len(lines)-maxTextLines, lines[:maxTextLines]
	}
	for _, ln := range lines {
		out = append(out, wrapLine(w, 0, -1, wire(ln, tcell.StyleDefault)))
	}
	if more > 0 {
		out = append(out, oneRow(-1, txt(fmt.Sprintf("… %d more lines (e saves the message)", more), styleDim)))
	}
	return out
}

// isText reports whether b looks like text (valid UTF-8 without NULs in
// its first 4 kB).
func isText(b []byte) bool {
	b = b[:min(len(b), 4096)]
	for _, c := range b {
		if c == 0 {
			return false
		}
	}
	return true
}

// cursorPart returns the MIME part under the message view's cursor.
func (v *View) cursorPart() (*Part, int) {
	p, _ := v.parse()
	if p == nil {
		return nil, -1
	}
	lines := v.messageLines(max(v.w, 20))
	cur := v.panes[ModeMessage].cur
	if cur < 0 || cur >= len(lines) || lines[cur].act < 0 || lines[cur].act >= len(p.Parts) {
		return nil, -1
	}
	return &p.Parts[lines[cur].act], lines[cur].act
}

func (v *View) openPart() {
	if _, i := v.cursorPart(); i >= 0 {
		v.textPart = i
	}
}

// savePartPrompt asks where to save the part under the cursor (or the
// message's first attachment).
func (v *View) savePartPrompt() {
	pt, _ := v.cursorPart()
	if pt == nil {
		if p, _ := v.parse(); p != nil {
			for i := range p.Parts {
				if !p.Parts[i].Multipart && (p.Parts[i].Filename != "" || p.Parts[i].Disposition == "attachment") {
					pt = &p.Parts[i]
					break
				}
			}
		}
	}
	if pt == nil {
		v.notice = "no part to save: put the cursor on a part of the MIME tree"
		return
	}
	data := pt.Data
	v.prompt = &prompt{label: fmt.Sprintf("save part %s (%d bytes) as: ", pt.Path, len(data)),
		input: sink.SafeName(pt.Filename, pt.ContentType), do: func(path string) string { return saveFile(path, data) }}
}

func (v *View) saveMessagePrompt() {
	m := v.current()
	if m == nil {
		v.notice = "no message to save"
		return
	}
	raw, err := v.readBody(m)
	if raw == nil {
		v.notice = err.Error()
		return
	}
	name := sink.SafeName(fmt.Sprintf("%d-%d.eml", v.selID, v.msgIdx+1), "message/rfc822")
	v.prompt = &prompt{label: fmt.Sprintf("save message (%d bytes) as: ", len(raw)), input: name,
		do: func(path string) string { return saveFile(path, raw) }}
}

// saveFile writes data to a new file at path (never over an existing
// one) and says what happened.
func saveFile(path string, data []byte) string {
	path = filepath.Clean(strings.TrimSpace(path))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "not saved: " + err.Error()
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "not saved: " + err.Error()
	}
	return fmt.Sprintf("saved %d bytes to %s", len(data), path)
}

func wrapAngle(a []string) []string {
	out := make([]string, len(a))
	for i, s := range a {
		out[i] = "<" + s + ">"
	}
	return out
}

// The help screen.

var helpText = [][2]string{
	{"Views", ""},
	{"1 2 3", "sessions, credentials, anomalies (or click the tab)"},
	{"t  m", "transcript (ladder) / message of the selected session"},
	{"Tab, Shift-Tab", "next / previous view"},
	{"Enter, click", "open: a session's transcript, a folded message, a MIME part, the session of a credential or anomaly"},
	{"Esc, Backspace", "back (message → transcript → sessions); in the sessions view Esc clears the filter"},
	{"?  h", "this help (Esc closes)"},
	{"q, Ctrl-C", "quit"},
	{"Moving", ""},
	{"↑ ↓, k j", "previous / next line"},
	{"PgUp PgDn, b Space", "a page up / down"},
	{"Home End, g G", "first / last"},
	{"mouse wheel", "scroll"},
	{"Sessions", ""},
	{"s  S", "sort by the next column / reverse (or click a column header)"},
	{"/", "filter (Enter keeps, Esc restores, Ctrl-U clears)"},
	{"Messages", ""},
	{"n p, ] [", "next / previous message of the session"},
	{"s", "save the MIME part under the cursor (or the first attachment)"},
	{"e", "save the message as .eml"},
	{"Filter", ""},
	{"word", "free text: addresses, users, HELO, subjects, state, #id"},
	{"proto:imap", "protocol (smtp, pop3, imap)"},
	{"user:alice", "authenticated user"},
	{"from:x@y  to:z", "envelope or header sender / recipient"},
	{"subject:word", "subject"},
	{"auth:fail", "a failed login (auth:ok, auth:none)"},
	{"state:partial", "session state (open, complete, partial, midstream, encrypted, ...)"},
	{"has:attachment", "has:attachment, has:auth, has:anomaly, has:rejected"},
	{"anomaly:gap", "an anomaly containing the word"},
	{"-word", "negates a word; words combine with AND; \"quoted words\" hold spaces"},
	{"Marks", ""},
	{"✓ ✗", "authentication succeeded / failed (red)"},
	{"yellow", "rejected mail or recipient, unusual state"},
	{"magenta", "anomalies"},
	{"┃", "pipelined commands in the transcript"},
	{"▸ ▾", "a folded / opened message in the transcript"},
}

func (v *View) helpLines(w int) []line {
	out := []line{oneRow(-1, txt(" mailtap tui keys", styleHeader))}
	for _, h := range helpText {
		if h[1] == "" {
			out = append(out, oneRow(-1), oneRow(-1, txt(" "+h[0], styleTitle)))
			continue
		}
		out = append(out, wrapLine(w, 22, -1, txt("  "+pad(h[0], 19, false)+" ", styleTitle), txt(h[1], tcell.StyleDefault)))
	}
	return out
}

// status is the bottom line: the prompt or filter being typed, else the
// decoding state and counters, the filter and the last notice.
func (v *View) status() string {
	if v.prompt != nil {
		return " " + v.prompt.label + v.prompt.input
	}
	if v.editing {
		return " filter: " + v.FilterText
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
	out := fmt.Sprintf(" %s | %d sessions, %d messages", st, v.snap.Total, v.snap.Messages)
	if v.snap.Stats.Packets > 0 {
		out += fmt.Sprintf(", %d packets", v.snap.Stats.Packets)
		if !v.snap.Done {
			out += fmt.Sprintf(" (%.0f/s)", v.rate)
		}
	}
	if v.snap.Stats.Drops > 0 {
		out += fmt.Sprintf(", %d drops", v.snap.Stats.Drops)
	}
	if v.snap.Dropped > 0 {
		out += fmt.Sprintf(", %d oldest sessions dropped", v.snap.Dropped)
	}
	if sp := v.m.Spill(); sp != nil && sp.Full() > 0 {
		out += fmt.Sprintf(", %d bodies not kept (spill full)", sp.Full())
	}
	if !v.filter.Empty() {
		out += fmt.Sprintf(" | filter %q: %d of %d", v.FilterText, len(v.rows), v.snap.Total)
		if len(v.filter.Errs) > 0 {
			out += " (unknown: " + strings.Join(v.filter.Errs, " ") + ")"
		}
	}
	if v.notice != "" {
		return out + " | " + v.notice
	}
	return out + " | ? keys, / filter, q quit"
}
