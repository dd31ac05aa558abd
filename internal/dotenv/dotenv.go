// Package dotenv layers the .env file of the working directory under the
// real environment, the way every classbot command reads its settings.
package dotenv

import (
	"errors"
	"fmt"
	"os"

	"github.com/joho/godotenv"
)

// Getenv returns a getenv that reads getenv first and then the .env file in
// the working directory, if there is one: a real environment variable that
// is set (not empty) wins. It reads the file once, now. A .env that cannot
// be read or parsed is an error; a missing one is not.
func Getenv(getenv func(string) string) (func(string) string, error) {
	file, err := godotenv.Read(".env")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return getenv, nil
		}
		return nil, fmt.Errorf("read .env: %w", err)
	}
	return func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return file[k]
	}, nil
}
