package cel

import (
	"encoding/json"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImageConfigVars gives a check of target imageconfig the image's config
// as "config", in its JSON form (config.config.User, config.config.Env,
// config.history, ...).
func ImageConfigVars(cfg *v1.ConfigFile) (map[string]any, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return map[string]any{"config": m}, nil
}

// DockerfileVars gives a check of target dockerfile the parsed file as
// "file": pass config/dockerfile's (*File).Map().
func DockerfileVars(file map[string]any) map[string]any {
	return map[string]any{"file": file}
}
