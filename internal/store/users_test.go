package store

import (
	"errors"
	"testing"

	"github.com/watchroom/watchroom/internal/model"
)

func TestUsers(t *testing.T) {
	s := newStore(t)
	ctx := testCtx(t)

	steps := []struct {
		name     string
		user     string
		role     model.Role
		hash     string
		wantErr  bool
		wantRole model.Role
		wantHash string
	}{
		{name: "create", user: "ana", role: model.RoleAnalyst, hash: "h1", wantRole: model.RoleAnalyst, wantHash: "h1"},
		{name: "update role and hash", user: "ana", role: model.RoleAdmin, hash: "h2", wantRole: model.RoleAdmin, wantHash: "h2"},
		{name: "unknown role refused", user: "bob", role: "root", hash: "h", wantErr: true},
	}
	created := map[string]model.User{}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := s.UpsertUser(ctx, st.user, st.role, st.hash)
			if st.wantErr {
				if err == nil {
					t.Fatal("UpsertUser succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("UpsertUser: %v", err)
			}
			u, err := s.User(ctx, st.user)
			if err != nil {
				t.Fatalf("User: %v", err)
			}
			if u.Name != st.user || u.Role != st.wantRole || u.PasswordHash != st.wantHash || u.CreatedAt.IsZero() {
				t.Errorf("User = %+v, want %s %s %s", u, st.user, st.wantRole, st.wantHash)
			}
			if prev, ok := created[st.user]; ok && !prev.CreatedAt.Equal(u.CreatedAt) {
				t.Errorf("CreatedAt moved on update: %v -> %v", prev.CreatedAt, u.CreatedAt)
			}
			created[st.user] = u
		})
	}

	t.Run("unknown user", func(t *testing.T) {
		if _, err := s.User(ctx, "bob"); !errors.Is(err, ErrNotFound) {
			t.Errorf("User(bob) err = %v, want ErrNotFound", err)
		}
	})
}
