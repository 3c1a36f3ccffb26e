"use strict";
// Swagger UI from the installed package; tried requests go with the signed-in session and its CSRF token.
(() => {
  const token = new URLSearchParams(location.search).get("token");
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";
  window.SwaggerUIBundle({
    url: "/openapi.json" + (token ? `?token=${encodeURIComponent(token)}` : ""),
    dom_id: "#swagger-ui",
    deepLinking: true,
    requestInterceptor: (request) => {
      if (csrf) request.headers["X-CSRF-Token"] = csrf;
      if (token && !request.headers.Authorization) request.headers.Authorization = `Bearer ${token}`;
      return request;
    },
  });
})();
