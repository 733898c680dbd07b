package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/olahol/melody"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
)

// wsCounters feed /metrics.
type wsCounters struct {
	open, total, cut, bad atomic.Int64
	delivery              deliveryHist
}

// wsWindow bounds the frames handed to melody but not yet written to the
// socket; the rest wait in the session's feed subscription, where a
// lagging client's readings and snapshots are coalesced.
const wsWindow = 4

// wsStall is how long a session may hold unwritten frames before it is cut:
// a client that stopped reading. Its socket's send buffer is kept small so
// that it shows within seconds. It is shorter than melody's WriteWait, so
// the client is told why.
const wsStall = 5 * time.Second

// streamSendBuffer is the kernel send buffer of a WebSocket or SSE
// connection: small, so that a client that stopped reading shows in seconds.
const streamSendBuffer = 64 << 10

// wsConn is one session's state: its feed subscription (which holds its
// channels) and the frames in flight.
type wsConn struct {
	s   *Server
	ss  *melody.Session
	sub *hub.Subscription

	upgraded     chan struct{} // closed once the handler may return
	upgradedOnce sync.Once

	inbox    chan []byte // messages read and not yet handled
	handling atomic.Bool // a goroutine is draining inbox

	mu       sync.Mutex
	ctrl     [][]byte // replies waiting for the window
	inflight int
	sentAt   []int64 // publish ms of the frames in flight, 0 for replies
	lastSent time.Time
	cut      bool
}

func (s *Server) newMelody() *melody.Melody {
	m := melody.New()
	m.Config.MaxMessageSize = DefaultMaxWSMessage
	m.Config.MessageBufferSize = 2 * wsWindow // flow control keeps it from filling
	m.Config.WriteWait = 10 * time.Second
	m.Config.PongWait = 60 * time.Second
	m.Config.PingPeriod = 45 * time.Second
	// Small per-connection buffers, shared write buffers: memory per
	// connection is what limits a fan-out of thousands.
	m.Upgrader.ReadBufferSize = 256 // messages are small; larger ones take more reads
	m.Upgrader.WriteBufferSize = 4096
	m.Upgrader.WriteBufferPool = &sync.Pool{}
	// melody accepts every Origin by default; a dashboard on another site
	// must not be able to read the fleet through the visitor's browser.
	m.Upgrader.CheckOrigin = s.checkOrigin
	m.HandleConnect(func(ss *melody.Session) {
		s.wsc.open.Add(1)
		s.wsc.total.Add(1)
		if s.ctx.Err() != nil {
			// Upgraded while Close ran: melody registers the session even
			// after it closed all sessions, and nothing else would end it.
			ss.Close() //nolint:errcheck // already closing is fine
			return
		}
		if tc, ok := ss.WebsocketConnection().UnderlyingConn().(*net.TCPConn); ok {
			tc.SetWriteBuffer(streamSendBuffer) //nolint:errcheck // a larger buffer only delays the cut
		}
		c, ok := connOf(ss)
		if !ok {
			return
		}
		defer c.markUpgraded()
		c.ss, c.lastSent = ss, time.Now()
		c.sub = s.Feed.Subscribe(c.forward)
		// melody keeps the request for the session's life; only the peer's
		// address is used after the upgrade.
		ss.Request = &http.Request{RemoteAddr: ss.Request.RemoteAddr}
	})
	m.HandleDisconnect(func(ss *melody.Session) {
		s.wsc.open.Add(-1)
		if c, ok := connOf(ss); ok && c.sub != nil {
			s.Feed.Unsubscribe(c.sub)
			c.mu.Lock()
			// melody's own write timeout ended a stalled session first.
			stalled := !c.cut && c.inflight > 0 && time.Since(c.lastSent) > wsStall
			c.cut = c.cut || stalled
			c.mu.Unlock()
			if stalled {
				s.wsc.cut.Add(1)
			}
		}
	})
	m.HandleSentMessage(func(ss *melody.Session, _ []byte) {
		if c, ok := connOf(ss); ok {
			now := time.Now()
			c.mu.Lock()
			c.inflight--
			c.lastSent = now
			var at int64
			if len(c.sentAt) > 0 {
				at = c.sentAt[0]
				c.sentAt = append(c.sentAt[:0], c.sentAt[1:]...)
			}
			c.mu.Unlock()
			if at > 0 {
				s.wsc.delivery.record(at, now)
			}
			c.forward()
		}
	})
	m.HandleMessage(func(ss *melody.Session, msg []byte) {
		if c, ok := connOf(ss); ok {
			c.receive(msg)
		}
	})
	m.HandleError(func(ss *melody.Session, err error) {
		if errors.Is(err, melody.ErrMessageBufferFull) {
			// Flow control should make this impossible; never let melody
			// drop a frame silently.
			if c, ok := connOf(ss); ok {
				c.cutOff("client too slow: send buffer full")
			}
		}
	})
	return m
}

const keyConn = "conn"

func connOf(ss *melody.Session) (*wsConn, bool) {
	v, ok := ss.Get(keyConn)
	if !ok {
		return nil, false
	}
	return v.(*wsConn), true
}

// maxControl bounds the replies (subscribed, pong, errors) waiting for a
// client that sends faster than it reads.
const maxControl = 1024

// send queues one reply and forwards what the window allows; replies go
// before feed events.
func (c *wsConn) send(frame []byte) {
	c.mu.Lock()
	if len(c.ctrl) >= maxControl {
		c.mu.Unlock()
		c.cutOff(fmt.Sprintf("client too slow: more than %d replies unread", maxControl))
		return
	}
	c.ctrl = append(c.ctrl, frame)
	c.mu.Unlock()
	c.forward()
}

// forward moves replies, then pending events, to melody while the window
// allows, and cuts a session the feed dropped or whose socket stopped
// draining.
func (c *wsConn) forward() {
	select {
	case <-c.sub.Done():
		if r := c.sub.Reason(); r != "unsubscribed" {
			c.cutOff(r)
		}
		return
	default:
	}
	c.mu.Lock()
	stalled := c.inflight > 0 && time.Since(c.lastSent) > wsStall
	c.mu.Unlock()
	if stalled {
		c.cutOff(fmt.Sprintf("client stopped reading: nothing written for %s", wsStall))
		return
	}
	for {
		c.mu.Lock()
		if c.inflight >= wsWindow || c.cut {
			c.mu.Unlock()
			return
		}
		var frame []byte
		var at int64
		if len(c.ctrl) > 0 {
			frame = c.ctrl[0]
			c.ctrl[0] = nil
			c.ctrl = c.ctrl[1:]
		} else if ev := c.sub.Pop(); ev != nil {
			frame, at = ev.WS(), ev.Time
		} else {
			c.mu.Unlock()
			return
		}
		c.inflight++
		c.sentAt = append(c.sentAt, at)
		c.mu.Unlock()
		if err := c.ss.Write(frame); err != nil {
			c.mu.Lock()
			c.inflight--
			c.sentAt = c.sentAt[:len(c.sentAt)-1]
			c.mu.Unlock()
			return
		}
	}
}

// maxWSChannels bounds one connection's channels: a dashboard follows
// one channel per device it shows, and a bigger fleet by its visible rows.
const maxWSChannels = 4096

// wsInbox bounds the messages a client has sent and the hub not yet
// handled; past it, reading waits, and TCP pushes back on the client.
const wsInbox = 4

// receive queues a client's message for a short-lived goroutine, in order.
// Handling a subscribe (JSON decoding, replay) needs a deep stack: done on
// the read goroutine, which lives as long as the connection, that stack
// would stay grown for every idle dashboard.
func (c *wsConn) receive(msg []byte) {
	c.inbox <- msg
	if c.handling.CompareAndSwap(false, true) {
		if !c.s.sessions.Go(c.drain) {
			c.handling.Store(false) // shutting down: the message goes unanswered
		}
	}
}

func (c *wsConn) drain() {
	for {
		select {
		case msg := <-c.inbox:
			c.s.handleWSMessage(c, msg)
			continue
		default:
		}
		c.handling.Store(false)
		// A message queued after the select but before the store found
		// handling still set: take it, unless a new drain already has.
		if len(c.inbox) == 0 || !c.handling.CompareAndSwap(false, true) {
			return
		}
	}
}

func (c *wsConn) markUpgraded() { c.upgradedOnce.Do(func() { close(c.upgraded) }) }

// cutOff tells the client why and closes the connection; it reconnects and
// resumes from its last event id.
func (c *wsConn) cutOff(reason string) {
	c.mu.Lock()
	if c.cut {
		c.mu.Unlock()
		return
	}
	c.cut = true
	c.mu.Unlock()
	c.s.wsc.cut.Add(1)
	c.s.Logger.Warn("websocket client cut", "remote", c.ss.Request.RemoteAddr, "reason", reason)
	b, _ := json.Marshal(map[string]string{"type": "cut", "reason": reason})
	c.ss.Write(b) //nolint:errcheck // best effort: it may not be reading
	// A control frame may be written concurrently with the write pump, and
	// does not wait behind a full buffer.
	conn := c.ss.WebsocketConnection()
	conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.ClosePolicyViolation, truncate(reason, 120)), time.Now().Add(time.Second)) //nolint:errcheck
	conn.Close()
}

func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser: no ambient credentials to abuse
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range s.AllowedOrigins {
		if strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	s.Logger.Warn("websocket origin refused", "origin", origin, "host", r.Host)
	return false
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if !s.checkOrigin(r) {
		writeError(w, http.StatusForbidden, "origin not allowed: open the dashboard from the hub itself, or add the origin to allowed_origins")
		return
	}
	release, ok := s.admit(w, r, "ws")
	if !ok {
		return
	}
	// The session runs on its own goroutine and this handler returns once
	// the connection is upgraded: net/http then lets go of its per-request
	// state (two 4 KB buffers, the serving goroutine's deep stack), which
	// would otherwise live as long as the socket. At 10k dashboards that
	// is most of the hub's memory.
	upgraded := make(chan struct{})
	c := &wsConn{s: s, upgraded: upgraded, inbox: make(chan []byte, wsInbox)}
	remote := r.RemoteAddr
	started := s.sessions.Go(func() {
		defer release()
		err := s.ws.HandleRequestWithKeys(w, r, map[string]any{keyConn: c})
		c.markUpgraded() // a refused upgrade has written its answer by now
		if err != nil {
			s.Logger.Debug("websocket upgrade failed", "remote", remote, "err", err)
		}
	})
	if !started {
		release()
		writeError(w, http.StatusServiceUnavailable, "hub shutting down")
		return
	}
	<-upgraded
}

type wsRequest struct {
	Type    string  `json:"type"`
	Channel string  `json:"channel"`
	Since   *uint64 `json:"since"`
}

func (s *Server) handleWSMessage(c *wsConn, msg []byte) {
	var req wsRequest
	if err := json.Unmarshal(msg, &req); err != nil {
		s.wsError(c, "bad message: want JSON like {\"type\":\"subscribe\",\"channel\":\"fleet\"}")
		return
	}
	switch req.Type {
	case "ping":
		c.send([]byte(`{"type":"pong"}`))
	case "unsubscribe":
		if err := validChannel(req.Channel); err != nil {
			s.wsError(c, err.Error())
			return
		}
		s.Feed.Leave(c.sub, req.Channel)
		reply, _ := json.Marshal(map[string]string{"type": "unsubscribed", "channel": req.Channel})
		c.send(reply)
	case "subscribe":
		if err := validChannel(req.Channel); err != nil {
			s.wsError(c, err.Error())
			return
		}
		if has, n := s.Feed.Joined(c.sub, req.Channel); !has && n >= maxWSChannels {
			s.wsError(c, fmt.Sprintf("too many channels: at most %d per connection", maxWSChannels))
			return
		}
		reply, _ := json.Marshal(map[string]string{"type": "subscribed", "channel": req.Channel})
		c.send(reply)
		if req.Since == nil {
			s.Feed.Join(c.sub, req.Channel)
			if req.Channel == hub.ChannelFleet {
				c.send(s.fleetFrame())
			}
			return
		}
		ch := req.Channel
		if s.Feed.Resume(c.sub, *req.Since, ch) {
			reset, _ := json.Marshal(map[string]any{"type": "reset", "channel": ch, "id": s.Feed.LastID()})
			c.send(reset)
		}
		if ch == hub.ChannelFleet {
			// Snapshots are not kept for replay: the newest one is all a
			// resuming client needs.
			c.send(s.fleetFrame())
		}
	default:
		s.wsError(c, "unknown message type "+strconvQuote(req.Type)+": want subscribe, unsubscribe or ping")
	}
}

// fleetFrame is the current fleet snapshot as a WebSocket message. It has
// no id: it is a state, not an event of the feed, and must not move a
// client's resume point past events still being replayed.
func (s *Server) fleetFrame() []byte {
	body, _ := s.fleetJSON()
	frame := make([]byte, 0, len(body)+32)
	frame = append(frame, `{"type":"fleet","data":`...)
	frame = append(append(frame, body...), '}')
	return frame
}

func validChannel(ch string) error {
	switch {
	case ch == hub.ChannelFleet, ch == hub.ChannelAlerts:
		return nil
	case strings.HasPrefix(ch, "device:"):
		return telemetry.ValidateDeviceID(strings.TrimPrefix(ch, "device:"))
	}
	return errors.New("unknown channel " + strconvQuote(ch) + `: want "fleet", "alerts" or "device:<id>"`)
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(truncate(s, 80))
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (s *Server) wsError(c *wsConn, msg string) {
	s.wsc.bad.Add(1)
	b, _ := json.Marshal(map[string]string{"type": "error", "error": msg})
	c.send(b)
}
