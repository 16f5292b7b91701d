package admission

import (
	"io"
	"log/slog"

	"sigs.k8s.io/yaml"
)

func jsonLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

func yamlToJSON(b []byte) ([]byte, error) { return yaml.YAMLToJSON(b) }
