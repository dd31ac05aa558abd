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

// ModalSubmit builds a MODAL_SUBMIT (type 5) interaction from a recorded
// command payload: same user, guild and channel, a fresh id and token, data
// with customID and one action row holding a text input per field, as
// Discord sends a submitted form.
func ModalSubmit(file, id, token, customID string, fields map[string]string) (json.RawMessage, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	m["id"], m["token"], m["type"] = id, token, 5
	rows := []any{}
	for k, v := range fields {
		rows = append(rows, map[string]any{"type": 1, "components": []any{
			map[string]any{"type": 4, "custom_id": k, "value": v},
		}})
	}
	m["data"] = map[string]any{"custom_id": customID, "components": rows}
	return json.Marshal(m)
}
