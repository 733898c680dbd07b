package mochi

import (
	"crypto/subtle"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// authHook authenticates clients against a single configured username and
// password, or lets everyone in when no username is configured. mochi
// refuses every connection unless some hook provides OnConnectAuthenticate.
type authHook struct {
	mqtt.HookBase
	username []byte
	password []byte
}

func newAuthHook(username, password string) *authHook {
	return &authHook{username: []byte(username), password: []byte(password)}
}

func (h *authHook) ID() string { return "fleetwatch-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// OnConnectAuthenticate compares both fields in constant time, and always
// both, so timing reveals neither which field was wrong nor how much matched.
func (h *authHook) OnConnectAuthenticate(_ *mqtt.Client, pk packets.Packet) bool {
	if len(h.username) == 0 {
		return true
	}
	u := subtle.ConstantTimeCompare(pk.Connect.Username, h.username)
	p := subtle.ConstantTimeCompare(pk.Connect.Password, h.password)
	return u&p == 1
}

// OnACLCheck allows subscribing to anything but denies publishing to '$'
// topics, which are reserved for the broker ($SYS).
func (h *authHook) OnACLCheck(_ *mqtt.Client, topic string, write bool) bool {
	return !write || !strings.HasPrefix(topic, "$")
}
