#include "proxy/core/defer_queue.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "proxy/core/uv_util.h"

namespace portico::core {
namespace {

class DeferQueueTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(uv_loop_init(&loop_), 0); }
  void TearDown() override { EXPECT_EQ(closeLoop(&loop_), 0); }
  uv_loop_t loop_{};
};

struct PollCtx {
  DeferQueue* queue = nullptr;
  std::string* log = nullptr;
  int fd = -1;
};

TEST_F(DeferQueueTest, WhatAnIoCallbackDefersRunsBeforeTheLoopPollsAgain) {
  // One loop turn: the poll delivers the event, its callback defers, the deferred function runs
  // in the same turn (the check phase), not after another poll.
  std::string log;
  {
    DeferQueue q(&loop_);
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    ASSERT_EQ(write(fds[1], "x", 1), 1);
    uv_poll_t poll;
    PollCtx ctx{&q, &log, fds[0]};
    uv_poll_init(&loop_, &poll, fds[0]);
    poll.data = &ctx;
    uv_poll_start(&poll, UV_READABLE, [](uv_poll_t* p, int, int) {
      auto* c = static_cast<PollCtx*>(p->data);
      *c->log += "io;";
      char b;
      (void)read(c->fd, &b, 1);
      uv_poll_stop(p);
      c->queue->defer([c] {
        *c->log += "deferred;";
        c->queue->defer([c] { *c->log += "second;"; });  // from the batch: next turn
      });
    });
    uv_run(&loop_, UV_RUN_ONCE);
    EXPECT_EQ(log, "io;deferred;");
    uv_run(&loop_, UV_RUN_NOWAIT);
    EXPECT_EQ(log, "io;deferred;second;");
    uv_close(reinterpret_cast<uv_handle_t*>(&poll), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    close(fds[0]);
    close(fds[1]);
  }
  uv_run(&loop_, UV_RUN_NOWAIT);  // the queue's handles close
}

TEST_F(DeferQueueTest, WhatATimerDefersRunsInTheSameTurnWithoutBlocking) {
  std::string log;
  {
    DeferQueue q(&loop_);
    uv_timer_t timer;
    uv_timer_init(&loop_, &timer);
    PollCtx ctx{&q, &log, -1};
    timer.data = &ctx;
    uv_timer_start(&timer, [](uv_timer_t* t) {
      auto* c = static_cast<PollCtx*>(t->data);
      *c->log += "timer;";
      c->queue->defer([c] { *c->log += "deferred;"; });
    }, 0, 0);
    uv_run(&loop_, UV_RUN_ONCE);  // would block forever if the queue did not keep it awake
    EXPECT_EQ(log, "timer;deferred;");
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
  }
  uv_run(&loop_, UV_RUN_NOWAIT);
}

TEST_F(DeferQueueTest, IdleQueueDoesNotKeepTheLoopAlive) {
  DeferQueue q(&loop_);
  EXPECT_EQ(uv_run(&loop_, UV_RUN_DEFAULT), 0);  // returns: prepare/check are unref'd
  int ran = 0;
  q.defer([&] { ++ran; });
  q.runAll();
  EXPECT_EQ(ran, 1);
}

// Batches reuse their storage: functions run in order, what a function defers waits for the
// next batch, and a runAll() from inside a deferred function (a nested batch) runs what is
// queued without disturbing the batch around it.
TEST_F(DeferQueueTest, BatchesKeepOrderAcrossReuseAndNesting) {
  DeferQueue q(&loop_);
  std::string log;
  for (int round = 0; round < 3; ++round) {
    q.defer([&] {
      log += 'a';
      q.defer([&] { log += 'c'; });  // next batch
    });
    q.defer([&] { log += 'b'; });
    q.runAll();
    log += '|';
  }
  EXPECT_EQ(log, "abc|abc|abc|");
  log.clear();
  q.defer([&] {
    log += '1';
    q.defer([&] { log += '3'; });
    q.runAll();  // nested: runs '3' now
    log += '4';
  });
  q.defer([&] { log += '5'; });
  q.runAll();
  EXPECT_EQ(log, "1345");
}

}  // namespace
}  // namespace portico::core
