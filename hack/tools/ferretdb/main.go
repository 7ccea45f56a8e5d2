// Command ferretdb is FerretDB, a MongoDB-protocol server over PostgreSQL (or SQLite), built
// from the Go module proxy through its embeddable package. The tests start it on a free port
// over a PostgreSQL server of their own, as they start PostgreSQL and Redis.
//
// It prints "listening on <mongodb URI>" on standard output once it accepts connections,
// and stops on SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	postgres := flag.String("postgresql-url", "", "PostgreSQL database to keep the data in")
	dir := flag.String("dir", "", "folder to keep the data in with SQLite, without --postgresql-url")
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on")
	flag.Parse()
	if (*dir == "") == (*postgres == "") {
		fmt.Fprintln(os.Stderr, "ferretdb: give one of --postgresql-url and --dir")
		os.Exit(2)
	}
	handler, sqliteURL := "postgresql", ""
	if *dir != "" {
		handler, sqliteURL = "sqlite", "file:"+*dir+"/?_pragma=synchronous(full)"
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listen},
		Logger:        logger,
		Handler:       handler,
		PostgreSQLURL: *postgres,
		SQLiteURL:     sqliteURL,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	fmt.Println("listening on", f.MongoDBURI())
	<-done
}
