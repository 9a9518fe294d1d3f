/** What both table layouts (report/table) render with. */

/** A signed delta in points: "+1.3", "−0.3", "±0.0", or a dash when either number is missing. */
export const signed = (d: number | null) => (d === null ? '–' : `${d > 0 ? '+' : d < 0 ? '−' : '±'}${Math.abs(d).toFixed(1)}`);
export const mdCell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
export const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
export const TABLE_STYLE = '<style>table{border-collapse:collapse;font:14px system-ui}th,td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}th[scope=row]{text-align:left}.delta td{color:#555}.mean{font-weight:600}</style>';
