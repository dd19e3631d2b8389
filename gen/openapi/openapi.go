// Package openapi embeds the merged OpenAPI (Swagger 2.0) document generated
// from the public protos by protoc-gen-openapiv2.
package openapi

import _ "embed"

// JSON is the document the gateway serves at /openapi.json.
//
//go:embed certflow.swagger.json
var JSON []byte
