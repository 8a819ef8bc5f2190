package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
)

func runKeys(args []string) error {
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("usage: opentrail keys create --account ACCT --user NAME --role admin|reader|writer")
	}
	fs := flag.NewFlagSet("keys create", flag.ExitOnError)
	endpoint := fs.String("endpoint", env("http://127.0.0.1:4590", "OPENTRAIL_ENDPOINT"), "OpenTrail server URL")
	region := fs.String("region", env("us-east-1", "OPENTRAIL_REGION"), "signing region")
	account := fs.String("account", "", "account of the new key (default: root's account)")
	user := fs.String("user", "", "user name of the key's owner")
	role := fs.String("role", "reader", "admin, reader or writer")
	fs.Parse(args[1:])
	if *user == "" {
		return fmt.Errorf("--user is required")
	}
	c, err := newClient(*endpoint, *region, true)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"Account": *account, "User": *user, "Role": *role})
	var out struct {
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string `json:"SecretAccessKey"`
		Account         string `json:"Account"`
		User            string `json:"User"`
	}
	if err := c.post(context.Background(), "/v1/keys", body, &out); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
