// How the console writes states, times and durations (in the operator's language).
import { t, currentLang } from './i18n.js';

// The health states shown as "down": a camera that does not answer or refuses the hub.
export const DOWN = new Set(['offline', 'auth-failed']);

export function healthText(s) {
  const k = `health.${s}`;
  const v = t(k);
  return v === k ? s : v;
}

// A time of the API as the operator's local date and time.
export function localTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(currentLang() === 'ko' ? 'ko-KR' : 'en-GB');
}

// Seconds as "2 d 3 h", "3 h 4 min", "4 min 5 s", "5 s".
export function fmtDuration(sec) {
  let s = Math.max(0, Math.round(sec));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d) return `${t('dur.d', d)} ${t('dur.h', h)}`;
  if (h) return `${t('dur.h', h)} ${t('dur.m', m)}`;
  if (m) return `${t('dur.m', m)} ${t('dur.s', s)}`;
  return t('dur.s', s);
}

export function since(iso) {
  if (!iso) return '—';
  return `${localTime(iso)} (${t('health.for', fmtDuration((Date.now() - Date.parse(iso)) / 1000))})`;
}

export function statusText(s) {
  const k = `status.${s}`;
  const v = t(k);
  return v === k ? s : v;
}
