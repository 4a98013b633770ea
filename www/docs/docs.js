// www/docs/docs.js: starts Swagger UI on mlfcgi's OpenAPI document.
//
// The document is ../openapi.json from this page (the page is served at
// <mount>/docs/), or <api>/openapi.json when the page's URL has ?api=<api>,
// a path on this same site such as /ml. Nothing is loaded from elsewhere:
// the online validator badge is off.
"use strict";
(function () {
  var api = new URLSearchParams(window.location.search).get("api");
  var rel = "../openapi.json";

  // Only a same-site path: never a document from another origin.
  if (api && /^\/(?!\/)[A-Za-z0-9._~\/-]*$/.test(api))
    rel = api.replace(/\/+$/, "") + "/openapi.json";
  window.ui = SwaggerUIBundle({
    url: new URL(rel, window.location.href).href,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    displayRequestDuration: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
  });
})();
