package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/opentrail/opentrail/internal/server"
)

var keysCommands = []command{
	{"create", "create an access key (the secret is shown only here)", runKeysCreate},
	{"list", "list access keys", runKeysList},
	{"disable", "disable a key: requests signed with it fail until it is enabled", func(a []string) error { return runKeysChange(server.KeysDisable, a) }},
	{"enable", "enable a disabled key", func(a []string) error { return runKeysChange(server.KeysEnable, a) }},
	{"delete", "delete a key for good", func(a []string) error { return runKeysChange(server.KeysDelete, a) }},
}

const keysAbout = `Keys are managed by the root key (any account) or an admin key (its own account); each call
is recorded in the caller's trail as the IAM call it stands for. Credentials: OPENTRAIL_ROOT_ACCESS_KEY_ID
and OPENTRAIL_ROOT_SECRET_ACCESS_KEY, else the AWS SDK's chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...).`

func runKeysCreate(args []string) error {
	fs := newFlags("opentrail keys create", "--user NAME [flags]", "Creates an access key and prints it as JSON.\n\n"+keysAbout,
		"opentrail keys create --account 444455556666 --user ci --role writer")
	cf := addClientFlags(fs, "signing region")
	account := fs.String("account", "", "account of the key (default: the caller's account)")
	user := fs.String("user", "", "user name of the key's owner (required)")
	role := fs.enum("role", "reader", []string{"admin", "reader", "writer"}, "what the key may do")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, "no arguments"); err != nil {
		return err
	}
	if *user == "" {
		return usagef("--user is required")
	}
	var out server.CreateKeyResponse
	if err := keysCall(cf, server.CreateKeyRequest{Account: *account, User: *user, Role: *role}, &out); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func runKeysList(args []string) error {
	fs := newFlags("opentrail keys list", "[flags]", "Lists access keys (never their secrets): the caller's account's, or with the root key "+
		"another account's or, without --account, every account's.\n\n"+keysAbout, "opentrail keys list --account 444455556666")
	cf := addClientFlags(fs, "signing region")
	account := fs.String("account", "", "account whose keys to list (default: the root key's: every account; an admin's: its own)")
	output := fs.enum("output", "table", []string{"table", "json"}, "output format")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(0, "no arguments"); err != nil {
		return err
	}
	var out server.ListKeysResponse
	if err := keysCall(cf, server.CreateKeyRequest{Action: server.KeysList, Account: *account}, &out); err != nil {
		return err
	}
	if *output == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCESS KEY ID\tACCOUNT\tUSER\tROLE\tSTATUS\tCREATED")
	for _, k := range out.AccessKeys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.AccessKeyID, k.Account, k.User, k.Role, k.Status, k.Created.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func runKeysChange(action string, args []string) error {
	what := map[string]string{
		server.KeysDisable: "Disables an access key: requests signed with it fail with UnrecognizedClientException, as AWS answers for an inactive key, until it is enabled again. The root key cannot be disabled.",
		server.KeysEnable:  "Enables a disabled access key.",
		server.KeysDelete:  "Deletes an access key for good. The root key cannot be deleted; restart the server with new OPENTRAIL_ROOT_* variables to replace it.",
	}[action]
	name := map[string]string{server.KeysDisable: "disable", server.KeysEnable: "enable", server.KeysDelete: "delete"}[action]
	fs := newFlags("opentrail keys "+name, "[flags] ACCESS_KEY_ID", what+"\n\n"+keysAbout, "opentrail keys "+name+" AKIAEXAMPLEEXAMPLE01")
	cf := addClientFlags(fs, "signing region")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.wantArgs(1, "one ACCESS_KEY_ID"); err != nil {
		return err
	}
	var out server.KeyInfo
	if err := keysCall(cf, server.CreateKeyRequest{Action: action, AccessKeyID: fs.Arg(0)}, &out); err != nil {
		return err
	}
	if action == server.KeysDelete {
		fmt.Printf("deleted %s (%s in %s)\n", out.AccessKeyID, out.User, out.Account)
		return nil
	}
	fmt.Printf("%s: %s (%s in %s)\n", out.AccessKeyID, out.Status, out.User, out.Account)
	return nil
}

// keysCall sends one POST /v1/keys as the root key (or what the AWS chain gives).
func keysCall(cf clientFlags, in server.CreateKeyRequest, out any) error {
	ctx := context.Background()
	c, err := cf.connect(ctx, true)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(in)
	return c.post(ctx, "/v1/keys", body, out)
}
