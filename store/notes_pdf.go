package store

import "errors"

func splitPDF(file, content string) ([]Section, error) {
	return nil, errors.New("PDF is not read yet")
}
