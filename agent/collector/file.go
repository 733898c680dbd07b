package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/fleetwatch/fleetwatch/agent/telemetry"
)

// maxFileSize caps what File reads: sensor files hold a few bytes, and a
// path pointed at a log or a device by mistake must not cost memory.
const maxFileSize = 4 << 10

// parseFileNumber reads the number in a sensor file. When a field starts
// with "t=" the last one is the value, as in a 1-Wire w1_slave file:
//
//	72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
//	72 01 4b 46 7f ff 0e 10 57 t=23125
//
// whose first line must then not end in "NO" (a failed CRC: the value is
// noise). Otherwise the whole file, trimmed, is the number ("23125\n" in
// the newer w1 temperature file, "48312" in a thermal zone).
func parseFileNumber(s string) (float64, error) {
	tok := strings.TrimSpace(s)
	f := strings.Fields(s)
	for i := len(f) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(f[i], "t="); ok {
			if crcFailed(s) {
				return 0, errors.New("1-Wire CRC check failed (crc=… NO)")
			}
			tok = v
			break
		}
	}
	if tok == "" {
		return 0, errors.New("empty file")
	}
	v, err := strconv.ParseFloat(tok, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a finite number", truncate(tok, 40))
	}
	return v, nil
}

// crcFailed reports whether a w1_slave line with "crc=" ends in NO.
func crcFailed(s string) bool {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && strings.Contains(line, "crc=") && f[len(f)-1] == "NO" {
			return true
		}
	}
	return false
}

// resolvePath returns path, or the one file a glob pattern matches: a
// 1-Wire sensor's directory is named by its serial number
// (28-0316a2794cff), so `28-*/temperature` spares looking it up when there
// is one sensor. More than one match is an error, not a guess.
func resolvePath(path string) (string, error) {
	if !strings.ContainsAny(path, "*?[") {
		return path, nil
	}
	matches, err := filepath.Glob(path)
	switch {
	case err != nil:
		return "", fmt.Errorf("pattern %s: %w", path, err)
	case len(matches) == 0:
		return "", fmt.Errorf("%s: no such file", path)
	case len(matches) > 1:
		return "", fmt.Errorf("%s matches %d files (%s, %s…): name one", path, len(matches), matches[0], matches[1])
	}
	return matches[0], nil
}

// readSmall reads at most maxFileSize bytes of path, failing past that.
func readSmall(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxFileSize {
		return "", fmt.Errorf("%s: longer than %d bytes, not a sensor value", path, maxFileSize)
	}
	return string(b), nil
}

// File reports one number read from a file on every Collect, times Scale,
// as Metric: a 1-Wire thermometer, a sysfs value, a file another program
// keeps up to date.
type File struct {
	// Key is the custom reading's name from the config.
	Key string
	// Path is the file, or a glob that must match exactly one file.
	Path string
	// Scale multiplies the value (0.001 for millidegrees); 0 means 1.
	Scale float64
	// Metric is the metric name; default "custom.<Key>".
	Metric string
}

// Name implements agent.Collector: the metric's name.
func (f *File) Name() string { return f.metric() }

func (f *File) metric() string { return orDefault(f.Metric, "custom."+f.Key) }

// Collect implements agent.Collector.
func (f *File) Collect(_ context.Context, m telemetry.Metrics) error {
	path, err := resolvePath(f.Path)
	if err != nil {
		return err
	}
	s, err := readSmall(path)
	if err != nil {
		return err
	}
	v, err := parseFileNumber(s)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if f.Scale != 0 {
		v *= f.Scale
	}
	if math.IsInf(v, 0) {
		return fmt.Errorf("%s: %v × scale %v overflows", path, v/f.Scale, f.Scale)
	}
	put(m, f.metric(), v)
	return nil
}
