// An OpenID Connect provider for Switchboard's sign-in tests: npm's `oidc-provider`, a certified
// implementation, with its development login and consent pages (any password signs in).
// Usage: node oidc_provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
// Prints "listening" once it serves http://127.0.0.1:PORT.
import Provider from "oidc-provider";

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);

// The people of the organization, by login name; anyone else signs in as a plain user.
const people = {
  carol: { name: "Carol Lin", email: "carol@example.com", groups: ["engineering"], role: "admin" },
  dave: { name: "Dave Ito", email: "dave@example.com", groups: ["sales"], role: "member" },
};

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  scopes: ["openid", "profile", "email", "groups", "role"],
  claims: { openid: ["sub"], profile: ["name"], email: ["email"], groups: ["groups"], role: ["role"] },
  // The ID token carries every claim of the scopes granted, not only the ones it must.
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id, ...(people[id] ?? { name: id }) }; } };
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["switchboard-test-cookie-key"] },
});
provider.listen(Number(port), "127.0.0.1", () => console.log("listening"));
