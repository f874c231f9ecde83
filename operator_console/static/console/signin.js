/* SceneLink console: signing in and out, and the configuration fetched once signed in. */
(function () {
  'use strict';

  var C = window.SceneLink.console;
  var ApiError = window.SceneLink.ApiError;

  C.onSignedIn = function (user) {
    var els = C.els;
    C.me = user;
    document.body.setAttribute('data-auth', 'in');
    els.username.textContent = user && user.username ? user.username : '';
    els.userRoles.textContent = user && Array.isArray(user.roles) && user.roles.length ? '(' + user.roles.join(', ') + ')' : '';
    C.show(els.userBox, true);
    C.show(els.loginSection, false);
    C.applyGates();
    C.show(els.app, true);
    C.globalError('');
    loadConfig();
    C.startPolling();
  };

  C.onSignedOut = function (message) {
    var els = C.els;
    C.me = null;
    C.stopPolling();
    C.stopWatching();
    document.body.setAttribute('data-auth', 'out');
    C.show(els.userBox, false);
    C.show(els.app, false);
    C.show(els.loginSection, true);
    els.loginError.textContent = message || '';
    C.sessions = {};
    C.rows = {};
    C.clear(els.sessions);
    C.resetOutbox();
    C.resetRecordings();
    var u = els.loginForm.elements.username;
    if (u) setTimeout(function () { try { u.focus(); } catch (e) {} }, 0);
  };

  C.checkMe = async function checkMe() {
    try {
      var user = await C.api('GET', '/api/me');
      C.onSignedIn(user);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) C.onSignedOut('');
      else {
        C.onSignedOut('');
        C.globalError('Cannot reach the SceneLink server. Retrying…');
        setTimeout(checkMe, 3000);
      }
    }
  };

  C.onLoginSubmit = async function (ev) {
    ev.preventDefault();
    var els = C.els;
    var f = els.loginForm;
    var btn = f.querySelector('button[type=submit]');
    var username = f.elements.username.value.trim();
    var password = f.elements.password.value;
    els.loginError.textContent = '';
    if (!username || !password) { els.loginError.textContent = 'Enter your username and password.'; return; }
    btn.disabled = true;
    try {
      var user = await C.api('POST', '/api/login', { username: username, password: password });
      f.elements.password.value = '';
      if (!user || !user.username) {
        try { user = await C.api('GET', '/api/me'); } catch (e) { user = { username: username, roles: [] }; }
      }
      C.onSignedIn(user);
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 403)) els.loginError.textContent = 'Wrong username or password.';
      else if (e instanceof ApiError && e.status === 429) els.loginError.textContent = 'Too many attempts. Please wait and try again.';
      else if (e instanceof ApiError) els.loginError.textContent = 'Sign in failed: ' + window.SceneLink.errorText(e);
      else els.loginError.textContent = 'Cannot reach the server. Please try again.';
    } finally {
      btn.disabled = false;
    }
  };

  C.logout = async function () {
    try { await C.api('POST', '/api/logout', {}); } catch (e) { /* signed out locally anyway */ }
    C.onSignedOut('You have signed out.');
  };

  async function loadConfig() {
    var els = C.els;
    try {
      var c = await C.api('GET', '/api/config');
      if (c) C.config = c;
    } catch (e) { /* map works without tiles */ }
    els.forceName.textContent = C.config.force_name ? '– ' + C.config.force_name : '';
    if (C.config.force_name) document.title = 'SceneLink – ' + C.config.force_name;
    C.fillLanguages();
    if (C.liveMap) C.addTiles(C.liveMap.map);
    if (C.playbackMap) C.addTiles(C.playbackMap.map);
  }
})();
