// Runs terraform-provider-libvirt's own Create functions, as pulumi-libvirt would call them, against
// a real libvirtd, and prints what each one logged (the XML it generated) and returned.
//
// It is copied into the provider's libvirt/ package at v0.8.1 (it calls unexported functions) by
// tests/libvirt/provider_run.py, which also feeds it the program's inputs and compares the XML
// with tests/libvirt/provider_model.py. Input on K8SF_RUN (a JSON file), output on K8SF_OUT.
package libvirt

import (
	"bytes"
	"context"
	"encoding/json"
	"log"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
)

type k8sfStep struct {
	Name     string                 `json:"name"`
	Resource string                 `json:"resource"`
	Config   map[string]interface{} `json:"config"`
}

type k8sfResult struct {
	Name  string `json:"name"`
	ID    string `json:"id"`
	Log   string `json:"log"`
	Error string `json:"error"`
}

func TestK8sfProviderRun(t *testing.T) {
	in := os.Getenv("K8SF_RUN")
	if in == "" {
		t.Skip("K8SF_RUN is not set")
	}
	raw, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	var steps []k8sfStep
	if err := json.Unmarshal(raw, &steps); err != nil {
		t.Fatal(err)
	}
	client, err := (&Config{URI: os.Getenv("LIBVIRT_DEFAULT_URI")}).Client()
	if err != nil {
		t.Fatal(err)
	}
	resources := map[string]*schema.Resource{
		"libvirt_network": resourceLibvirtNetwork(), "libvirt_volume": resourceLibvirtVolume(),
		"libvirt_cloudinit_disk": resourceCloudInitDisk(), "libvirt_domain": resourceLibvirtDomain(),
	}
	ids := map[string]string{}
	var results []k8sfResult
	var buf bytes.Buffer
	log.SetOutput(&buf)
	for _, step := range steps {
		// "${name}" in a string stands for the id of an earlier step, as Pulumi passes outputs on.
		cfg := k8sfBind(step.Config, ids).(map[string]interface{})
		res := resources[step.Resource]
		d := schema.TestResourceDataRaw(t, res.Schema, cfg)
		buf.Reset()
		diags := res.CreateContext(context.Background(), d, client)
		r := k8sfResult{Name: step.Name, ID: d.Id(), Log: buf.String()}
		for _, dg := range diags {
			r.Error += dg.Summary + dg.Detail
		}
		ids[step.Name] = d.Id()
		results = append(results, r)
	}
	out, _ := json.MarshalIndent(results, "", "  ")
	if err := os.WriteFile(os.Getenv("K8SF_OUT"), out, 0o600); err != nil {
		t.Fatal(err)
	}
}

func k8sfBind(v interface{}, ids map[string]string) interface{} {
	switch x := v.(type) {
	case string:
		if strings.HasPrefix(x, "${") && strings.HasSuffix(x, "}") {
			return ids[x[2:len(x)-1]]
		}
		return x
	case []interface{}:
		out := make([]interface{}, len(x))
		for i, e := range x {
			out[i] = k8sfBind(e, ids)
		}
		return out
	case map[string]interface{}:
		out := map[string]interface{}{}
		for k, e := range x {
			out[k] = k8sfBind(e, ids)
		}
		return out
	}
	return v
}
