import { useEffect, useRef, useState } from 'preact/hooks';
import { errorText, formatDateTime } from '../common/format';
import { useServices } from '../services';
import type { Limits } from '../sensors/thresholds';
import { type AlertRule, type AlertRuleIn, type RuleKind, type RulesResponse, roleAtLeast } from '../types';

interface Props {
  sensorId: string;
  metric: string;
  unit: string;
  /** The stored threshold's limits (enabled only), to draw on the chart. */
  onLimits: (l: Limits) => void;
}

/** The form's text, one field per input; '' is "not set". */
interface Form {
  thOn: boolean;
  min: string;
  max: string;
  spOn: boolean;
  k: string;
  stOn: boolean;
  after: string;
}

const DEFAULT_K = 4;

/**
 * The detection rules of one sensor metric (docs/alerts.md#rules), editable
 * by operators and admins, read-only for the rest. Saving replaces the
 * sensor's whole rule set: the other metrics' rules and the fields not
 * shown here go back as they were. The server validates; a refused save
 * stores nothing and its message stays next to the form. When someone
 * else changes the rules (rules_changed) they are reloaded; edits in
 * progress are kept, with a note.
 */
export function RulesEditor({ sensorId, metric, unit, onLimits }: Props) {
  const svc = useServices();
  const canEdit = roleAtLeast(svc.me?.role, 'operator');
  const [rules, setRules] = useState<AlertRule[] | null>(null);
  const [defaultK, setDefaultK] = useState(DEFAULT_K);
  const [form, setForm] = useState<Form>(() => toForm([], metric));
  const [dirty, setDirty] = useState(false);
  const [loadError, setLoadError] = useState('');
  const [error, setError] = useState('');
  const [status, setStatus] = useState('');
  const [saving, setSaving] = useState(false);
  const dirtyRef = useRef(false);
  dirtyRef.current = dirty;

  const show = (res: RulesResponse, keepForm: boolean) => {
    const list = res.rules ?? [];
    setRules(list);
    if (typeof res.defaults?.spike?.k === 'number') setDefaultK(res.defaults.spike.k);
    if (!keepForm) {
      setForm(toForm(list, metric));
      setDirty(false);
    }
    onLimits(limitsOf(list, metric));
  };

  useEffect(() => {
    let stale = false;
    const load = async (changedBy?: string) => {
      try {
        const res = await svc.api.get<RulesResponse>(`/api/sensors/${encodeURIComponent(sensorId)}/rules`);
        if (stale) return;
        setLoadError('');
        show(res, dirtyRef.current);
        if (changedBy && changedBy !== svc.me?.user) {
          setStatus(
            dirtyRef.current
              ? `${changedBy} changed these rules meanwhile; saving now replaces their change.`
              : `${changedBy} changed these rules.`,
          );
        }
      } catch (err) {
        if (!stale) setLoadError(`Could not load the rules: ${errorText(err)}`);
      }
    };
    setRules(null);
    setError('');
    setStatus('');
    setDirty(false);
    onLimits({});
    void load();
    const off = svc.rulesChanged.on((c) => {
      if (c.sensor_id === sensorId) void load(c.updated_by);
      else if (c.sensor_id === '') void load(); // a reconnect: anything may have changed
    });
    return () => {
      stale = true;
      off();
    };
  }, [sensorId, metric]);

  const edit = (patch: Partial<Form>) => {
    setForm((f) => ({ ...f, ...patch }));
    setDirty(true);
    setStatus('');
  };

  const save = async (e: Event) => {
    e.preventDefault();
    if (!rules || saving) return;
    setError('');
    setStatus('');
    let body: AlertRuleIn[];
    try {
      body = toRules(rules, metric, form, defaultK);
    } catch (err) {
      setError(errorText(err));
      return;
    }
    setSaving(true);
    try {
      const res = await svc.api.request<RulesResponse>('PUT', `/api/sensors/${encodeURIComponent(sensorId)}/rules`, {
        rules: body,
      });
      show(res, false);
      setStatus('Saved.');
    } catch (err) {
      setError(`Not saved: ${errorText(err)}`);
    } finally {
      setSaving(false);
    }
  };

  const mine = (rules ?? []).filter((r) => r.metric === metric);
  const last = mine.reduce<AlertRule | undefined>((a, r) => (!a || r.updated_at > a.updated_at ? r : a), undefined);
  const limits = limitsOf(rules ?? [], metric);
  const disabled = !canEdit || saving || rules === null;
  const invalid = error ? { 'aria-invalid': true, 'aria-describedby': 'rules-error' } : {};
  const unitText = unit ? ` (${unit})` : '';

  return (
    <section class="rules" aria-labelledby="rules-title" data-testid="rules">
      <h3 id="rules-title">Alert rules for {metric}</h3>
      {!canEdit && (
        <p class="muted small" data-testid="rules-readonly">
          Changing rules needs the operator role; you are {svc.me?.role ?? 'signed in'}, so they are shown read-only.
        </p>
      )}
      {loadError && <p class="error small">{loadError}</p>}
      <form class="rules-form" onSubmit={(e) => void save(e)} aria-describedby="rules-limits">
        <fieldset>
          <legend>Threshold</legend>
          <label class="check">
            <input type="checkbox" id="rule-th-on" checked={form.thOn} disabled={disabled} onChange={(e) => edit({ thOn: e.currentTarget.checked })} />
            On
          </label>
          <label for="rule-th-min">Min{unitText}</label>
          <input id="rule-th-min" inputMode="decimal" size={8} value={form.min} disabled={disabled} {...invalid}
            onInput={(e) => edit({ min: e.currentTarget.value })} />
          <label for="rule-th-max">Max{unitText}</label>
          <input id="rule-th-max" inputMode="decimal" size={8} value={form.max} disabled={disabled} {...invalid}
            onInput={(e) => edit({ max: e.currentTarget.value })} />
        </fieldset>
        <fieldset>
          <legend>Spike</legend>
          <label class="check">
            <input type="checkbox" id="rule-sp-on" checked={form.spOn} disabled={disabled} onChange={(e) => edit({ spOn: e.currentTarget.checked })} />
            On
          </label>
          <label for="rule-sp-k">Sensitivity k (standard deviations)</label>
          <input id="rule-sp-k" inputMode="decimal" size={6} placeholder={`${defaultK} (default)`} value={form.k} disabled={disabled}
            {...invalid} onInput={(e) => edit({ k: e.currentTarget.value })} />
        </fieldset>
        <fieldset>
          <legend>Offline</legend>
          <label class="check">
            <input type="checkbox" id="rule-st-on" checked={form.stOn} disabled={disabled} onChange={(e) => edit({ stOn: e.currentTarget.checked })} />
            On
          </label>
          <label for="rule-st-after">After seconds without a reading</label>
          <input id="rule-st-after" inputMode="decimal" size={8} placeholder="automatic" value={form.after} disabled={disabled}
            {...invalid} onInput={(e) => edit({ after: e.currentTarget.value })} />
        </fieldset>
        {canEdit && (
          <div class="rules-actions">
            <button type="submit" class="primary" disabled={disabled || !dirty}>
              {saving ? 'Saving…' : 'Save rules'}
            </button>
            {dirty && (
              <button
                type="button"
                disabled={saving}
                onClick={() => {
                  setForm(toForm(rules ?? [], metric));
                  setDirty(false);
                  setError('');
                }}
              >
                Discard changes
              </button>
            )}
          </div>
        )}
        {error && (
          <p id="rules-error" class="error small" role="alert" data-testid="rules-error">
            {error}
          </p>
        )}
        <p class="muted small" role="status" data-testid="rules-status">
          {status}
        </p>
        <p id="rules-limits" class="muted small" data-testid="rules-limits">
          {limits.min === undefined && limits.max === undefined
            ? 'No threshold is drawn on the chart.'
            : `Drawn on the chart: ${[
                limits.min !== undefined ? `min ${limits.min}` : '',
                limits.max !== undefined ? `max ${limits.max}` : '',
              ]
                .filter(Boolean)
                .join(', ')}${unit ? ' ' + unit : ''}.`}
          {last?.updated_by && ` Last changed by ${last.updated_by}${last.updated_at ? ` at ${formatDateTime(last.updated_at)}` : ''}.`}
        </p>
      </form>
    </section>
  );
}

function ruleOf(rules: AlertRuleIn[], metric: string, kind: RuleKind): AlertRuleIn | undefined {
  return rules.find((r) => r.metric === metric && r.kind === kind);
}

const text = (v: number | undefined) => (v === undefined || v === null ? '' : String(v));

/** The form as the stored rules (or the defaults) say. */
export function toForm(rules: AlertRuleIn[], metric: string): Form {
  const th = ruleOf(rules, metric, 'threshold');
  const sp = ruleOf(rules, metric, 'spike');
  const st = ruleOf(rules, metric, 'stale');
  return {
    thOn: th ? th.enabled !== false : false,
    min: text(th?.min),
    max: text(th?.max),
    spOn: sp ? sp.enabled !== false : true,
    k: text(sp?.k),
    stOn: st ? st.enabled !== false : true,
    after: text(st?.after_seconds),
  };
}

/** The limits to draw: the metric's enabled threshold's. */
export function limitsOf(rules: AlertRuleIn[], metric: string): Limits {
  const th = ruleOf(rules, metric, 'threshold');
  if (!th || th.enabled === false) return {};
  return { min: th.min ?? undefined, max: th.max ?? undefined };
}

/** A number typed in a field; undefined when empty; throws when it is not a number. */
function num(label: string, s: string): number | undefined {
  const t = s.trim().replace(',', '.');
  if (t === '') return undefined;
  const v = Number(t);
  if (!Number.isFinite(v)) throw new Error(`${label} must be a number, not "${s.trim()}".`);
  return v;
}

/**
 * The sensor's whole rule set for PUT: every stored rule of other metrics
 * as it was, and this metric's three kinds as the form says. A kind gets a
 * rule when one was stored or the form differs from the default (so that
 * opening and saving the form stores nothing new); stored fields the form
 * does not show (warmup, resolve_after) are kept. Only input syntax is
 * checked here; the server checks the rest.
 */
export function toRules(rules: AlertRuleIn[], metric: string, f: Form, defaultK = DEFAULT_K): AlertRuleIn[] {
  const strip = (r: AlertRuleIn | undefined): Partial<AlertRuleIn> => {
    if (!r) return {};
    const { sensor_id: _s, updated_by: _b, updated_at: _a, ...rest } = r;
    return rest;
  };
  const out: AlertRuleIn[] = rules.filter((r) => r.metric !== metric).map((r) => strip(r) as AlertRuleIn);
  const put = (kind: RuleKind, enabled: boolean, fields: Partial<AlertRuleIn>, isDefault: boolean) => {
    const old = ruleOf(rules, metric, kind);
    if (!old && isDefault) return;
    const r: AlertRuleIn = { ...strip(old), ...fields, metric, kind, enabled };
    for (const [k, v] of Object.entries(fields)) if (v === undefined) delete (r as unknown as Record<string, unknown>)[k];
    out.push(r);
  };
  const min = num('Min', f.min);
  const max = num('Max', f.max);
  put('threshold', f.thOn, { min, max }, !f.thOn && min === undefined && max === undefined);
  const k = num('Sensitivity k', f.k);
  put('spike', f.spOn, { k }, f.spOn && (k === undefined || k === defaultK));
  const after = num('After seconds', f.after);
  put('stale', f.stOn, { after_seconds: after }, f.stOn && after === undefined);
  return out;
}
