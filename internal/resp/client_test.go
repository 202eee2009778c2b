package resp

import (
	"bufio"
	"errors"
	"net"
	"strings"
	"testing"
)

func TestClient(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	done := make(chan error, 1)
	go func() {
		r := NewReader(bufio.NewReader(server))
		for _, reply := range []string{"-WRONGPASS invalid username-password pair\r\n", "*2\r\n$1\r\na\r\n:1\r\n"} {
			args, err := r.ReadCommand()
			if err != nil {
				done <- err
				return
			}
			if len(args) != 3 || string(args[0]) != "AUTH" || string(args[2]) != "secret-token" {
				done <- errors.New("unexpected command " + string(r.Raw()))
				return
			}
			if _, err := server.Write([]byte(reply)); err != nil {
				done <- err
				return
			}
		}
		done <- server.Close()
	}()
	c := NewClient(client)
	v, err := c.Do("AUTH", "user", "secret-token")
	var re *Error
	if err != nil || !errors.As(v.Err(), &re) || re.Code() != "WRONGPASS" {
		t.Fatalf("Do = %+v, %v", v, err)
	}
	v, err = c.Do("AUTH", "user", "secret-token")
	if err != nil || v.Kind != Array || len(v.Elems) != 2 || v.Elems[1].Int != 1 {
		t.Fatalf("Do = %+v, %v", v, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, err = c.Do("AUTH", "user", "secret-token")
	var ioe *IOError
	if !errors.As(err, &ioe) || ioe.Op != "send" || strings.Contains(err.Error(), "secret-token") {
		t.Fatalf("Do on a closed pipe: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
