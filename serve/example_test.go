package serve_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/serve"
)

// An HTTP server as a unit of a service: Start returns once it listens,
// Stop drains it. Port 0 picks a free port; Addr says which.
func ExampleHTTP() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})
	api := serve.HTTP(&http.Server{Addr: "127.0.0.1:0", Handler: mux, ReadHeaderTimeout: 5 * time.Second})
	svc := core.NewService(core.Name("api"), core.Logger(slog.New(slog.DiscardHandler)), api)

	if err := svc.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	resp, err := http.Get("http://" + api.Addr().String() + "/hello")
	if err != nil {
		fmt.Println(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(resp.Status, " ", string(body))
	}
	fmt.Println("stop:", svc.Stop(context.Background()))
	// Output:
	// 200 OK hello
	// stop: <nil>
}

// greeter is a server of a made-up protocol: it writes a line to each
// connection and closes it, one connection at a time. Its Shutdown has
// nothing to do: the unit closes the listener after Shutdown, which ends
// Serve with net.ErrClosed once the connection being served is done, and
// waits for Serve to return.
type greeter struct{}

func (greeter) Serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		fmt.Fprintln(c, "hello from greeter")
		c.Close()
	}
}

func (greeter) Shutdown(context.Context) error { return nil }

// Any server with Serve(net.Listener) and Shutdown(context.Context) fits
// (a gRPC server, behind the adapter shown in New's documentation).
func ExampleNew() {
	g := serve.New("127.0.0.1:0", greeter{}, serve.Name("greeter"))
	svc := core.NewService(core.Name("greetings"), core.Logger(slog.New(slog.DiscardHandler)), g)
	if err := svc.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	c, err := net.Dial("tcp", g.Addr().String())
	if err != nil {
		fmt.Println(err)
	} else {
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		fmt.Print(line)
	}
	fmt.Println("stop:", svc.Stop(context.Background()))
	// Output:
	// hello from greeter
	// stop: <nil>
}

// A busy port fails the start, which names the service, the unit and the
// address.
func ExampleHTTP_busyPort() {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer busy.Close()
	api := serve.HTTP(&http.Server{Addr: busy.Addr().String()}, serve.Name("api"))
	svc := core.NewService(core.Name("shop"), core.Logger(slog.New(slog.DiscardHandler)), api)
	err = svc.Start(context.Background())
	var se *core.StartupError
	if errors.As(err, &se) {
		fmt.Println(se.Service, "|", se.Part, "|", strings.Contains(se.Error(), "listen tcp "+busy.Addr().String()))
	}
	fmt.Println(svc.State())
	// Output:
	// shop | server api | true
	// failed
}
