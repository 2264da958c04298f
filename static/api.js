/* The API reference page: Swagger UI over Sentinel's own /openapi.json. */
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const target = document.getElementById("api-reference");
  SwaggerUIBundle({
    url: target.dataset.spec,
    domNode: target,
    deepLinking: true,
    defaultModelsExpandDepth: 0,
    // Reading the reference must not send requests to the instance by accident,
    // nor the description's address to swagger.io's validator.
    supportedSubmitMethods: [],
    validatorUrl: null,
  });
});
