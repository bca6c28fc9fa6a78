import { useState } from 'preact/hooks';
import { ApiError } from '../common/api';
import { errorText } from '../common/format';
import { useServices } from '../services';

export function Login() {
  const svc = useServices();
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await svc.login(user.trim(), password);
    } catch (err) {
      setError(
        err instanceof ApiError && (err.status === 401 || err.status === 403)
          ? 'Wrong user name or password.'
          : `Could not log in: ${errorText(err)}`,
      );
      setBusy(false);
    }
  };

  return (
    <main class="login">
      <form class="login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Watchroom</h1>
        <p class="muted">Live sensors, commands, alerts and chat.</p>
        {svc.loginNotice && (
          <p class="notice" role="status">
            {svc.loginNotice}
          </p>
        )}
        <label for="login-user">User name</label>
        <input
          id="login-user"
          name="username"
          autocomplete="username"
          required
          value={user}
          onInput={(e) => setUser(e.currentTarget.value)}
        />
        <label for="login-password">Password</label>
        <input
          id="login-password"
          name="password"
          type="password"
          autocomplete="current-password"
          required
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}
