/** The status page's stylesheet: served from our origin so the CSP can forbid inline styles. */
export const PORTAL_CSS = `
:root {
  --bg: #f5f6fa; --card: #ffffff; --text: #1d2330; --muted: #667085; --line: #e4e7ec;
  --accent: #4f46e5; --accent-dark: #4338ca; --danger: #d92d20; --ok: #067647; --ok-bg: #ecfdf3;
  --warn: #b54708; --warn-bg: #fffaeb; --off: #475467; --off-bg: #f2f4f7; --err-bg: #fef3f2;
  --radius: 14px; --shadow: 0 1px 2px rgba(16,24,40,.06), 0 4px 12px rgba(16,24,40,.06);
}
* { box-sizing: border-box; }
html { font-family: ui-sans-serif, system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: var(--text); background: var(--bg); }
body { margin: 0; line-height: 1.5; -webkit-font-smoothing: antialiased; }
.page { max-width: 980px; margin: 0 auto; padding: 40px 20px 64px; }
header.top { display: flex; align-items: flex-end; justify-content: space-between; gap: 16px; margin-bottom: 28px; flex-wrap: wrap; }
header.top h1 { margin: 0; font-size: 28px; letter-spacing: -.02em; }
header.top p { margin: 4px 0 0; color: var(--muted); }
.owner { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; background: var(--off-bg);
  color: var(--off); padding: 2px 8px; border-radius: 999px; }
.banner { border-radius: var(--radius); padding: 14px 18px; margin-bottom: 24px; border: 1px solid; font-weight: 500; }
.banner-success { background: var(--ok-bg); border-color: #abefc6; color: var(--ok); }
.banner-error { background: var(--err-bg); border-color: #fecdca; color: var(--danger); }
.banner-info { background: #eef4ff; border-color: #c7d7fe; color: #3538cd; }
.platforms { display: grid; gap: 20px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: var(--radius); box-shadow: var(--shadow); }
.platform > .platform-head { display: flex; align-items: center; justify-content: space-between; gap: 12px;
  padding: 18px 22px; border-bottom: 1px solid var(--line); }
.platform-name { display: flex; align-items: center; gap: 12px; font-weight: 650; font-size: 18px; }
.logo { width: 36px; height: 36px; border-radius: 10px; display: grid; place-items: center; color: #fff; font-weight: 700; font-size: 15px; }
.logo-tiktok { background: linear-gradient(135deg, #25f4ee, #000 45%, #fe2c55); }
.logo-instagram { background: linear-gradient(45deg, #f58529, #dd2a7b 50%, #8134af); }
.logo-youtube { background: #ff0033; }
.empty { padding: 18px 22px; color: var(--muted); margin: 0; }
.account { padding: 18px 22px; display: grid; grid-template-columns: 1fr auto; gap: 12px 20px; align-items: center; }
.account + .account { border-top: 1px solid var(--line); }
.account-title { display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
.account-title strong { font-size: 16px; }
.external { color: var(--muted); font-size: 13px; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 6px 24px; margin: 10px 0 0; }
dl.facts div { min-width: 0; }
dl.facts dt { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
dl.facts dd { margin: 0; font-size: 14px; overflow-wrap: anywhere; }
.error-text { color: var(--danger); }
.badge { display: inline-flex; align-items: center; gap: 6px; font-size: 12px; font-weight: 600; padding: 2px 10px; border-radius: 999px; }
.badge::before { content: ""; width: 7px; height: 7px; border-radius: 50%; background: currentColor; }
.badge-active { color: var(--ok); background: var(--ok-bg); }
.badge-needs_reauth { color: var(--warn); background: var(--warn-bg); }
.badge-revoked { color: var(--off); background: var(--off-bg); }
.badge-publication { color: var(--muted); background: var(--off-bg); }
.publications { margin-top: 10px; }
.publications dt { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.publications ul { margin: 4px 0 0; padding-left: 18px; font-size: 14px; }
.publications li { margin: 2px 0; overflow-wrap: anywhere; }
.actions { display: flex; gap: 8px; flex-wrap: wrap; justify-content: flex-end; }
.actions form { margin: 0; }
button, .button { font: inherit; font-size: 14px; font-weight: 600; border-radius: 10px; padding: 8px 14px; cursor: pointer;
  border: 1px solid var(--line); background: #fff; color: var(--text); transition: background .15s, border-color .15s; }
button:hover { background: #f9fafb; border-color: #d0d5dd; }
button:focus-visible { outline: 3px solid #c7d7fe; outline-offset: 1px; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.primary:hover { background: var(--accent-dark); }
button.danger { color: var(--danger); border-color: #fecdca; }
button.danger:hover { background: var(--err-bg); }
button:disabled { opacity: .5; cursor: not-allowed; }
.message { max-width: 560px; margin: 80px auto; padding: 32px; text-align: center; }
.message h1 { margin: 0 0 8px; font-size: 22px; }
.message p { margin: 0; color: var(--muted); }
.message-error h1 { color: var(--danger); }
.message-success h1 { color: var(--ok); }
footer.foot { margin-top: 28px; color: var(--muted); font-size: 13px; text-align: center; }
@media (max-width: 640px) { .account { grid-template-columns: 1fr; } .actions { justify-content: flex-start; } }
`;
