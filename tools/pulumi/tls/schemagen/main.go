// Command schemagen writes the schema-embed.json that pulumi-resource-tls embeds: its
// schema.json with the provider's version set, re-serialised through schema.PackageSpec. Upstream
// makes it with `go generate` (cmd/pulumi-resource-tls/generate.go), which would resolve the
// provider's own go.mod, whose replacement the Go module proxy refuses here; this does the same
// steps inside the wrapper module.
//
//	go run ./schemagen DIR VERSION
package main

import (
	"encoding/json"
	"log"
	"os"
	"path/filepath"

	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: schemagen DIR VERSION")
	}
	dir, version := os.Args[1], os.Args[2]
	contents, err := os.ReadFile(filepath.Join(dir, "schema.json"))
	if err != nil {
		log.Fatal(err)
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(contents, &spec); err != nil {
		log.Fatalf("cannot deserialize schema: %v", err)
	}
	spec.Version = version
	out, err := json.Marshal(spec)
	if err != nil {
		log.Fatalf("cannot reserialize schema: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "schema-embed.json"), out, 0o600); err != nil {
		log.Fatal(err)
	}
}
