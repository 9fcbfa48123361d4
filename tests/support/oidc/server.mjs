// A real OpenID Provider (node-oidc-provider) for the case board's browser tests.
// Started by tests/support/oidc_provider.py on a loopback port:
//   node server.mjs  (env: PORT, REDIRECT_URI, CLIENT_ID, CLIENT_SECRET, TOKEN_AUTH, ACCOUNTS)
// ACCOUNTS is JSON {login: {claims...}}; the development login form accepts any password for
// these logins. Prints "ready <issuer>" once it listens.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.ACCOUNTS || '{}');

const configuration = {
  clients: [{
    client_id: process.env.CLIENT_ID,
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: [process.env.REDIRECT_URI],
    post_logout_redirect_uris: [],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: process.env.TOKEN_AUTH || 'client_secret_basic',
  }],
  scopes: ['openid', 'liaison'],
  claims: { openid: ['sub'], liaison: ['liaison_offices', 'liaison_members'] },
  // Put the scope's claims into the ID token (the board reads them from there).
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['board-tests-only'] },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...account }; } };
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;
const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
