package jaegertest_test

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/coreservice/coreservice/internal/jaegertest"
)

func TestJaegerListensOnlyOnItsFourLoopbackPorts(t *testing.T) {
	j := jaegertest.Start(t)
	got, err := listeners(j.PID())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{j.OTLPGRPCEndpoint(), j.OTLPHTTPEndpoint(), strings.TrimPrefix(j.QueryURL(), "http://")}
	// The fourth is the query service's gRPC port, which has no accessor:
	// every listener must be on 127.0.0.1, and there must be exactly four.
	for _, addr := range got {
		host, _, _ := net.SplitHostPort(addr)
		if host != "127.0.0.1" {
			t.Errorf("Jaeger listens on %s, want 127.0.0.1 only (all listeners: %v)", addr, got)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("listeners: got %v, want %s among them", got, w)
		}
	}
	if len(got) != 4 {
		t.Errorf("listeners: got %v, want 4 (OTLP gRPC and HTTP, query HTTP and gRPC)", got)
	}
}

// listeners returns the addresses (ip:port) of the listening TCP sockets
// that process pid holds, from /proc.
func listeners(pid int) ([]string, error) {
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var addrs []string
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] { // 0A: LISTEN
				continue
			}
			addr, err := procAddr(fields[1])
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("/proc/%d/net/%s: %w", pid, table, err)
			}
			addrs = append(addrs, addr)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(addrs)
	return addrs, nil
}

// procAddr decodes an address of /proc/net/tcp{,6}: the IP as 32-bit
// words in host (little-endian) order, a colon, the port in hex.
func procAddr(s string) (string, error) {
	ipHex, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(ipHex)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", fmt.Errorf("bad address %q", s)
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return "", fmt.Errorf("bad port in %q", s)
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10)), nil
}
