/*
 * ctl_cmd: the answers of the control socket (list, close, stats); ctl.c
 * is their transport.  main.c hands ctl_cmd_answer to the server, so that
 * the server does not depend on the module that reads it.
 */
#ifndef SOCKSGATE_CTL_CMD_H
#define SOCKSGATE_CTL_CMD_H

struct ctl_conn;

/* A ctl_handler: arg is the struct srv. */
void ctl_cmd_answer(void *arg, const char *line, struct ctl_conn *c);

#endif
