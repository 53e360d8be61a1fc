package smtp

import (
	"slices"
	"time"

	"github.com/mailtap/mailtap/decode"
	"github.com/mailtap/mailtap/decode/message"
)

// txn is one mail transaction being decoded.
type txn struct {
	seq          int
	ts           time.Time
	helo         string
	hasMail      bool
	from, params string
	rcpts        []decode.Rcpt
	mailReply    *decode.Reply
	dataReply    *decode.Reply // latest data-phase decision
	rcptReply    *decode.Reply // without MAIL: the first refused RCPT's reply
	bdat         bool
	bdatRejected bool
	msg          *message.Parser
	message      *decode.Message
	truncated    bool
	missing      int64 // message bytes lost in gaps
	bareLF       bool

	pending    int  // commands of this transaction still waiting for a reply
	closed     bool // takes no more commands
	byClose    bool // closed by the end of the connection
	unanswered bool // a command was retired without a reply
	over       bool // closed with nothing pending: to be emitted
	done       bool

	// Storage for the replies above and the first recipient, to spare
	// allocations: a reply slot is written once, then only pointed at
	// (by this transaction's record, or a transaction copying the MAIL).
	replyArr [2]decode.Reply
	nreply   int
	rcptArr  [1]decode.Rcpt

	rec decode.SMTPMail // the record, written once by finish
}

// newTx opens a transaction and makes it current.
func (s *Session) newTx(ts time.Time) *txn {
	s.seq++
	t := &txn{seq: s.seq, ts: ts, helo: s.helo}
	t.rcpts = t.rcptArr[:0]
	s.cur = t
	s.open = append(s.open, t)
	return t
}

// txFor returns the current transaction for RCPT/DATA/BDAT, opening an
// invalid one (no MAIL) when there is none.
func (s *Session) txFor() *txn {
	if s.cur != nil {
		return s.cur
	}
	return s.outsideTx(s.Last)
}

// outsideTx opens a transaction without MAIL (mail_from "") for commands
// that came outside one, and records smtp_transaction_invalid.
func (s *Session) outsideTx(ts time.Time) *txn {
	s.Anomaly(decode.AnomalySMTPTransactionInvalid)
	return s.newTx(ts)
}

// endCur ends the current transaction (RSET, MAIL, HELO, QUIT, STARTTLS).
func (s *Session) endCur() {
	if t := s.cur; t != nil {
		s.endTx(t)
	}
}

// endTx stops t from taking commands and emits it if nothing is pending.
func (s *Session) endTx(t *txn) {
	t.closed = true
	if s.cur == t {
		s.cur = nil
	}
	s.maybeFinish(t)
}

// maybeFinish emits t once it is over, and records stay in seq order: a
// transaction over before an earlier one (a refused MAIL inside a
// transaction that goes on) waits for it.
func (s *Session) maybeFinish(t *txn) {
	if t.closed && t.pending <= 0 && !t.done {
		t.over = true
	}
	for len(s.open) > 0 && s.open[0].over {
		s.finish(s.open[0])
	}
}

// finish emits t's record.
func (s *Session) finish(t *txn) {
	t.done = true
	if i := slices.Index(s.open, t); i >= 0 {
		s.open = slices.Delete(s.open, i, i+1)
	}
	if t.msg != nil {
		t.truncated = true // content never reached its end
		s.finishMessage(t)
	}
	rec := &t.rec
	*rec = decode.SMTPMail{
		Header:     s.Header(decode.TypeSMTPMail, t.ts),
		Seq:        t.seq,
		Helo:       t.helo,
		MailFrom:   t.from,
		MailParams: t.params,
		RcptTo:     t.rcpts,
		BDAT:       t.bdat,
		Message:    t.message,
	}
	if rec.RcptTo == nil {
		rec.RcptTo = []decode.Rcpt{}
	}
	switch {
	case t.dataReply != nil:
		rec.Status = decode.TxRejected
		if is2xx(t.dataReply.Code) {
			rec.Status = decode.TxAccepted
		}
		rec.Reply = t.dataReply
	case t.mailReply != nil && !is2xx(t.mailReply.Code):
		rec.Status = decode.TxRejected
		rec.Reply = t.mailReply
	case t.rcptReply != nil && !slices.ContainsFunc(t.rcpts, func(r decode.Rcpt) bool { return r.Accepted }):
		// Recipients outside a transaction, all refused.
		rec.Status = decode.TxRejected
		rec.Reply = t.rcptReply
	case t.byClose || t.unanswered:
		rec.Status = decode.TxIncomplete
	default:
		rec.Status = decode.TxAborted
	}
	s.Transactions++
	s.Emit(rec)
}

// keepReply returns reply code with text (its last line) as t keeps it.
func (t *txn) keepReply(code int, text string) *decode.Reply {
	enh, rest := ParseEnhanced(code, text)
	if t.nreply == len(t.replyArr) {
		return &decode.Reply{Code: code, Enhanced: enh, Text: bound(rest, maxArgs)}
	}
	r := &t.replyArr[t.nreply]
	t.nreply++
	*r = decode.Reply{Code: code, Enhanced: enh, Text: bound(rest, maxArgs)}
	return r
}

// newMessage starts the message parser for t.
func (s *Session) newMessage(t *txn) *message.Parser {
	var w decode.MessageWriter
	if s.Opts.Messages != nil {
		w = s.Opts.Messages.Create(s.Conn, decode.ProtoSMTP, t.seq)
	}
	return message.New(message.Options{MaxMemory: s.Opts.MaxMessage, Writer: w, Hashes: s.Opts.Hashes})
}

// finishMessage ends t's message, if it has one in progress.
func (s *Session) finishMessage(t *txn) {
	if t.msg == nil {
		return
	}
	m := t.msg.Finish(t.truncated || t.missing > 0)
	t.msg.Release()
	t.msg = nil
	m.MissingBytes = t.missing
	if bare := string(decode.AnomalyBareLFDot); t.bareLF && !slices.Contains(m.Anomalies, bare) {
		m.Anomalies = append(m.Anomalies, bare)
	}
	t.message = m
}
