package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/olahol/melody"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
	"github.com/fleetwatch/fleetwatch/hub"
)

const keyChannels = "channels"

// channelSet is one session's subscriptions.
type channelSet struct {
	mu  sync.RWMutex
	set map[string]bool
}

func (c *channelSet) has(ch string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.set[ch]
}

func (c *channelSet) put(ch string, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if on {
		c.set[ch] = true
	} else {
		delete(c.set, ch)
	}
}

// wsCounters feed /metrics.
type wsCounters struct {
	open, total, cut, bad atomic.Int64
}

func (s *Server) newMelody() *melody.Melody {
	m := melody.New()
	m.Config.MaxMessageSize = DefaultMaxWSMessage
	m.Config.MessageBufferSize = 256
	m.Config.WriteWait = 10 * time.Second
	m.Config.PongWait = 60 * time.Second
	m.Config.PingPeriod = 45 * time.Second
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
		}
	})
	m.HandleDisconnect(func(*melody.Session) { s.wsc.open.Add(-1) })
	m.HandleMessage(s.handleWSMessage)
	m.HandleError(func(ss *melody.Session, err error) {
		if errors.Is(err, melody.ErrMessageBufferFull) {
			// melody would drop the message and keep the session: a
			// client with silent holes. Cut it instead; it reconnects
			// and reloads.
			s.wsc.cut.Add(1)
			s.Logger.Warn("websocket client too slow; closing", "remote", ss.Request.RemoteAddr)
			ss.WebsocketConnection().Close()
		}
	})
	return m
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
	keys := map[string]any{keyChannels: &channelSet{set: map[string]bool{}}}
	if err := s.ws.HandleRequestWithKeys(w, r, keys); err != nil {
		s.Logger.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
	}
}

type wsRequest struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
}

func (s *Server) handleWSMessage(ss *melody.Session, msg []byte) {
	var req wsRequest
	if err := json.Unmarshal(msg, &req); err != nil {
		s.wsError(ss, "bad message: want JSON like {\"type\":\"subscribe\",\"channel\":\"fleet\"}")
		return
	}
	chans := ss.MustGet(keyChannels).(*channelSet)
	switch req.Type {
	case "ping":
		ss.Write([]byte(`{"type":"pong"}`)) //nolint:errcheck // a closed session is reaped by melody
	case "subscribe", "unsubscribe":
		if err := validChannel(req.Channel); err != nil {
			s.wsError(ss, err.Error())
			return
		}
		on := req.Type == "subscribe"
		chans.put(req.Channel, on)
		reply, _ := json.Marshal(map[string]string{"type": req.Type + "d", "channel": req.Channel})
		ss.Write(reply) //nolint:errcheck
		if on && req.Channel == hub.ChannelFleet {
			body, _ := s.fleetJSON()
			frame := make([]byte, 0, len(body)+32)
			frame = append(frame, `{"type":"fleet","data":`...)
			frame = append(append(frame, body...), '}')
			ss.Write(frame) //nolint:errcheck
		}
	default:
		s.wsError(ss, "unknown message type "+strconvQuote(req.Type)+": want subscribe, unsubscribe or ping")
	}
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

func (s *Server) wsError(ss *melody.Session, msg string) {
	s.wsc.bad.Add(1)
	b, _ := json.Marshal(map[string]string{"type": "error", "error": msg})
	ss.Write(b) //nolint:errcheck
}

// pumpWS forwards feed events to subscribed sessions. The frame was encoded
// once by the feed; melody copies the same bytes to each session's buffer.
func (s *Server) pumpWS(ctx context.Context) {
	sub := s.Feed.Subscribe(nil)
	defer func() { s.Feed.Unsubscribe(sub) }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Done():
			s.Logger.Error("websocket pump cut off by feed", "reason", sub.Reason())
			sub = s.Feed.Subscribe(nil)
		case ev := <-sub.C:
			ch := ev.Channel                                            // status events are published on the fleet channel
			s.ws.BroadcastFilter(ev.WS, func(ss *melody.Session) bool { //nolint:errcheck // closed melody on shutdown
				v, ok := ss.Get(keyChannels)
				return ok && v.(*channelSet).has(ch)
			})
		}
	}
}
