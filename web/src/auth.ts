// API tokens in the dashboard: when mare answers 401 (it has [[http.tokens]]), a small prompt
// asks for a token with the `query` scope, kept in sessionStorage (this tab only, gone when it
// closes) and sent as `Authorization: Bearer` on every request. EventSource cannot send headers:
// the live stream alone takes the token as ?access_token= (the server accepts it nowhere else).
const KEY = 'mare.token';

export function token(): string | null {
  return sessionStorage.getItem(KEY);
}

let asking: Promise<void> | null = null;

// Shows the prompt (once for every request waiting on it) and resolves once a token is entered.
export function askToken(refused: boolean): Promise<void> {
  asking ??= new Promise<void>((resolve) => {
    const box = document.createElement('div');
    box.id = 'token-prompt';
    box.className = 'token-prompt';
    box.innerHTML = `<form>
        <h2>API token</h2>
        <p>This mare asks for a token with the <code>query</code> scope.</p>
        <p class="token-refused"></p>
        <input id="token-input" type="password" autocomplete="off" placeholder="token" required />
        <button type="submit">Open</button>
      </form>`;
    box.querySelector('.token-refused')!.textContent = refused ? 'That token was refused.' : '';
    const form = box.querySelector('form')!;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const value = (box.querySelector('#token-input') as HTMLInputElement).value.trim();
      if (!value) return;
      sessionStorage.setItem(KEY, value);
      box.remove();
      asking = null;
      resolve();
    });
    document.body.append(box);
    (box.querySelector('#token-input') as HTMLInputElement).focus();
  });
  return asking;
}

// fetch with the token; a refusal asks for one (again, if the one held was refused) and retries.
export async function authFetch(input: string, init: RequestInit = {}): Promise<Response> {
  for (;;) {
    const held = token();
    const headers = new Headers(init.headers);
    if (held) headers.set('Authorization', `Bearer ${held}`);
    const res = await fetch(input, { ...init, headers });
    // 401: no token or an unknown one; 403 with insufficient_scope: a token without `query`.
    const refused = res.status === 401 || (res.status === 403 && (res.headers.get('WWW-Authenticate') ?? '').includes('insufficient_scope'));
    if (!refused) return res;
    // A token changed while this request ran: try the new one before asking.
    if (token() !== held) continue;
    if (held) sessionStorage.removeItem(KEY);
    await askToken(held !== null);
  }
}

// The URL of a stream EventSource opens, with the token when one is held.
export function streamUrl(url: string): string {
  const held = token();
  if (!held) return url;
  return url + (url.includes('?') ? '&' : '?') + 'access_token=' + encodeURIComponent(held);
}
