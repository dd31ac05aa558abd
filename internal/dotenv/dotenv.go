// Package dotenv layers the .env file of the working directory under the
// real environment, the way every classbot command reads its settings.
package dotenv

import (
	"errors"
	"fmt"
	"os"

	"github.com/joho/godotenv"
)

// Lookup returns a getenv that reads lookupenv first and then the .env file
// in the working directory, if there is one: a variable that is set in the
// environment wins, even when it is set to the empty string (FOO= turns off
// what .env sets). It reads the file once, now. A .env that cannot be read
// or parsed is an error; a missing one is not.
func Lookup(lookupenv func(string) (string, bool)) (func(string) string, error) {
	file, err := godotenv.Read(".env")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			file = nil
		} else {
			return nil, fmt.Errorf("read .env: %w", err)
		}
	}
	return func(k string) string {
		if v, ok := lookupenv(k); ok {
			return v
		}
		return file[k]
	}, nil
}

// Getenv is Lookup for a getenv that cannot tell an empty variable from an
// unset one (os.Getenv, a test's map): there, an empty variable counts as
// unset and .env's value is used.
func Getenv(getenv func(string) string) (func(string) string, error) {
	return Lookup(func(k string) (string, bool) {
		v := getenv(k)
		return v, v != ""
	})
}
