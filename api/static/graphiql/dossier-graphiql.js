// Dossier's GraphiQL page: log in (POST /auth/token) or paste a token, then GraphiQL sends
// every request with `Authorization: Bearer <token>`. Everything is served by the package
// itself (no CDN). The token lives in this tab's sessionStorage only.
(function () {
  "use strict";
  var KEY = "dossier.graphiql.tokens";
  var loginPanel = document.getElementById("dossier-login");
  var bar = document.getElementById("dossier-bar");
  var who = document.getElementById("dossier-who");
  var message = document.getElementById("dossier-message");
  var root = null;

  function load() {
    try { return JSON.parse(sessionStorage.getItem(KEY) || "null"); } catch (e) { return null; }
  }
  function save(tokens) {
    if (tokens) { sessionStorage.setItem(KEY, JSON.stringify(tokens)); }
    else { sessionStorage.removeItem(KEY); }
  }
  function form(fields) {
    return Object.keys(fields).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(fields[k]);
    }).join("&");
  }
  function postForm(path, fields, headers) {
    return fetch(path, {
      method: "POST",
      headers: Object.assign({ "Content-Type": "application/x-www-form-urlencoded" }, headers || {}),
      body: form(fields),
    });
  }
  async function refresh(tokens) {
    if (!tokens || !tokens.refresh_token) { return null; }
    var response = await postForm("/auth/token", {
      grant_type: "refresh_token", refresh_token: tokens.refresh_token,
    });
    if (!response.ok) { return null; }
    var fresh = await response.json();
    fresh.username = tokens.username;
    save(fresh);
    return fresh;
  }
  async function fetcher(params, options) {
    var tokens = load();
    async function send(current) {
      var headers = Object.assign({ "Content-Type": "application/json", Accept: "application/json" },
        (options && options.headers) || {});
      if (current && current.access_token && !headers.Authorization) {
        headers.Authorization = "Bearer " + current.access_token;
      }
      return fetch("/graphql", { method: "POST", headers: headers, body: JSON.stringify(params) });
    }
    var response = await send(tokens);
    if (response.status === 401 && tokens && tokens.refresh_token) {
      var fresh = await refresh(tokens);  // the access token expired: one silent refresh
      if (fresh) { response = await send(fresh); }
    }
    return response.json();
  }
  function show(tokens) {
    var signedIn = Boolean(tokens && tokens.access_token);
    loginPanel.hidden = signedIn;
    bar.hidden = !signedIn;
    if (!signedIn) {
      if (root) { root.unmount(); root = null; }
      return;
    }
    who.textContent = tokens.username ? "signed in as " + tokens.username : "using a pasted token";
    if (!root) {
      root = ReactDOM.createRoot(document.getElementById("graphiql"));
      root.render(React.createElement(GraphiQL, { fetcher: fetcher }));
    }
  }
  document.getElementById("dossier-login-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    message.textContent = "";
    var username = document.getElementById("dossier-username").value;
    var password = document.getElementById("dossier-password").value;
    var response = await postForm("/auth/token", { username: username, password: password });
    var body = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      message.textContent = body.error_description || body.error || "login failed";
      return;
    }
    body.username = username;
    save(body);
    show(body);
  });
  document.getElementById("dossier-token-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var token = document.getElementById("dossier-token").value.trim().replace(/^Bearer\s+/i, "");
    if (!token) { return; }
    var tokens = { access_token: token };
    save(tokens);
    show(tokens);
  });
  document.getElementById("dossier-logout").addEventListener("click", async function () {
    var tokens = load();
    if (tokens && tokens.username) {
      await postForm("/auth/logout", { refresh_token: tokens.refresh_token || "" },
        { Authorization: "Bearer " + tokens.access_token }).catch(function () {});
    }
    save(null);
    show(null);
  });
  show(load());
})();
