package resp

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
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

// TestExactClientLeavesWhatFollows: NewExactClient's Do consumes the reply
// and not a byte more, so the connection can be handed on (the probe AUTH
// of a go-redis client built with Credentials.Hook).
func TestExactClientLeavesWhatFollows(t *testing.T) {
	for _, exact := range []bool{true, false} {
		c, s := net.Pipe()
		go func() {
			br := bufio.NewReader(s)
			if _, err := NewReader(br).ReadCommand(); err != nil {
				s.Close()
				return
			}
			s.Write([]byte("-WRONGPASS no\r\n+NEXT\r\n"))
		}()
		cl := NewClient(c)
		if exact {
			cl = NewExactClient(c)
		}
		v, err := cl.Do("AUTH", "u", "p")
		if err != nil || v.Err() == nil || v.Err().Error() != "WRONGPASS no" {
			t.Fatalf("exact=%v: Do = %+v, %v", exact, v, err)
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		rest := make([]byte, 7)
		n, _ := io.ReadFull(c, rest)
		if got := string(rest[:n]); exact && got != "+NEXT\r\n" || !exact && got == "+NEXT\r\n" {
			t.Errorf("exact=%v: the connection holds %q after the reply", exact, got)
		}
		c.Close()
		s.Close()
	}
}
