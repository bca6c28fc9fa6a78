package main

import (
	"testing"
	"time"
)

// SIGTERM under load: the server stops taking messages, commits and acks
// what it has, pushes it to its clients, and only then closes them with
// 1001. What it had not committed stays with the broker and is stored by
// the next process.
func TestFaultSigterm(t *testing.T) {
	r := newFaultRig(t, nil)
	ks := r.trackers(t, "client", 10, false)
	g := r.steadyLoad(t)
	time.Sleep(3 * time.Second)
	took, code := r.srv.term(30 * time.Second)
	if code != 0 {
		t.Errorf("server exit status %d after SIGTERM, want 0", code)
	}
	// What the stopped process stored is what its clients must have had
	// before their 1001.
	atStop, fStop := verifyStore(t, r.db, g, false)
	for _, k := range ks {
		if !waitUntil(10*time.Second, 20*time.Millisecond, func() bool { k.mu.Lock(); defer k.mu.Unlock(); return len(k.closes) > 0 }) {
			t.Errorf("client %s: connection still open after the server exited", k.name)
			continue
		}
		k.mu.Lock()
		if k.closes[0] != 1001 {
			t.Errorf("client %s closed with %d, want 1001", k.name, k.closes[0])
		}
		k.mu.Unlock()
	}
	verifyClients(t, g, atStop, ks, &fStop)

	// The next process stores the rest, each reading once.
	r.srv.start()
	time.Sleep(2 * time.Second)
	settle(t, r, g, nil, 60*time.Second)
	_, f := verifyStore(t, r.db, g, true)
	f.Clients, f.ClientsComplete, f.ClientMissing, f.ClientDups, f.ClientPhantom = fStop.Clients, fStop.ClientsComplete, fStop.ClientMissing, fStop.ClientDups, fStop.ClientPhantom
	f.log(t, "sigterm", "exit_took="+took.Round(time.Millisecond).String()+" stored_by_stopped_process="+itoa(fStop.Stored))
}
