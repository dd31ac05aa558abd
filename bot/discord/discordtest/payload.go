package discordtest

import (
	"encoding/json"
	"fmt"
	"os"
)

// Interaction builds an APPLICATION_COMMAND interaction from a recorded
// payload (a JSON file such as bot/discord/testdata/register_interaction.json),
// with its id, token, command name and options replaced. Options map names
// to string values; nil keeps the recorded ones.
func Interaction(file, id, token, name string, options map[string]string) (json.RawMessage, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	m["id"], m["token"] = id, token
	data, _ := m["data"].(map[string]any)
	if data == nil {
		return nil, fmt.Errorf("%s: no data object", file)
	}
	if name != "" {
		data["name"] = name
	}
	if options != nil {
		opts := []map[string]any{}
		for k, v := range options {
			opts = append(opts, map[string]any{"name": k, "type": 3, "value": v})
		}
		data["options"] = opts
	}
	return json.Marshal(m)
}
