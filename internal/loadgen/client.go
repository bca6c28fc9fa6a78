package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// login posts the credentials to /api/login and returns the token.
func login(ctx context.Context, addr, user, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/api/login", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("login %s: %w", user, err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.Token == "" {
		return "", fmt.Errorf("login %s: status %d, err %v", user, resp.StatusCode, err)
	}
	return out.Token, nil
}

// dialWS opens /ws and authenticates; it returns once auth_ok arrived.
// The read limit is raised: batch frames hold up to 64 readings.
func dialWS(ctx context.Context, addr, token string) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, "ws://"+addr+"/ws", nil)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	ws.SetReadLimit(1 << 20)
	auth := `{"type":"auth","data":{"token":"` + token + `"}}`
	if err := ws.Write(dctx, websocket.MessageText, []byte(auth)); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("send auth: %w", err)
	}
	_, first, err := ws.Read(dctx)
	// auth_ok comes alone or first in a batch frame with what followed it
	// (presence, pending deliveries); nothing of this run's load comes
	// before the connection is set up.
	if err != nil || !(bytes.HasPrefix(first, []byte(`{"type":"auth_ok"`)) || bytes.HasPrefix(first, []byte(`{"type":"batch","data":[{"type":"auth_ok"`))) {
		ws.CloseNow()
		return nil, fmt.Errorf("auth: got %.120q, err %v", first, err)
	}
	return ws, nil
}

// scrape returns every sample of the metrics listeners' /metrics by
// series (name with labels). addrs is one listener or several separated by
// commas (the instances of a cluster): each series is then the sum over
// the instances (CPU seconds, RSS, readings ingested, goroutines), the
// cluster's total.
func scrape(ctx context.Context, addrs string) (map[string]float64, error) {
	total := map[string]float64{}
	for _, addr := range strings.Split(addrs, ",") {
		vals, err := scrapeOne(ctx, strings.TrimSpace(addr))
		if err != nil {
			return nil, err
		}
		for k, v := range vals {
			total[k] += v
		}
	}
	return total, nil
}

func scrapeOne(ctx context.Context, addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	vals := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if f, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			vals[line[:i]] = f
		}
	}
	return vals, sc.Err()
}
