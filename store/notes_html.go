package store

import "errors"

func splitHTML(file, content string, strict bool) ([]Section, error) {
	return nil, errors.New("HTML is not read yet")
}
