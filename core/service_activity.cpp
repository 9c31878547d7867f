// File: core/service_activity.cpp — the service's activity, written to the store in batches.
#include "core/service_activity.h"

#include <spdlog/spdlog.h>

#include <vector>

namespace mb {

Result<std::unique_ptr<ServiceActivityWriter>> ServiceActivityWriter::start(
    const std::string& store_path, int64_t pid, Options options) {
  auto store = Store::open(store_path);
  if (!store.ok()) return store.status();
  MB_RETURN_IF_ERROR((*store)->delete_service_activity(""));
  std::unique_ptr<ServiceActivityWriter> writer(
      new ServiceActivityWriter(std::move(*store), pid, options));
  writer->thread_ = std::thread([w = writer.get()] { w->loop(); });
  return writer;
}

ServiceActivityWriter::ServiceActivityWriter(std::unique_ptr<Store> store, int64_t pid,
                                             Options options)
    : store_(std::move(store)), pid_(pid), options_(options) {}

ServiceActivityWriter::~ServiceActivityWriter() { stop(); }

void ServiceActivityWriter::record(ServiceActivityRecord record) {
  record.pid = pid_;
  std::lock_guard lock(mu_);
  auto it = last_.find(record.mailbox);
  if (it != last_.end() && it->second.activity == record.activity &&
      it->second.last_error == record.last_error) {
    return;
  }
  forgotten_.erase(record.mailbox);
  last_[record.mailbox] = record;
  pending_[record.mailbox] = std::move(record);
}

void ServiceActivityWriter::forget(const std::string& mailbox) {
  std::lock_guard lock(mu_);
  last_.erase(mailbox);
  pending_.erase(mailbox);
  forgotten_.insert(mailbox);
}

void ServiceActivityWriter::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t ServiceActivityWriter::writes() const {
  std::lock_guard lock(mu_);
  return writes_;
}

void ServiceActivityWriter::loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_for(lock, options_.interval, [&] { return stopping_; });
    const bool last = stopping_;  // what was recorded before stop() is written too
    lock.unlock();
    write_pending();
    lock.lock();
    if (last) return;
  }
}

void ServiceActivityWriter::write_pending() {
  std::vector<ServiceActivityRecord> batch;
  std::set<std::string> gone;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, record] : pending_) batch.push_back(std::move(record));
    pending_.clear();
    gone.swap(forgotten_);
  }
  if (batch.empty() && gone.empty()) return;
  // A failed write is logged and dropped: the next change of the mailbox writes it again.
  Status s = store_->put_service_activities(batch);
  if (!s.ok()) spdlog::warn("service activity not recorded for status: {}", s.message());
  for (const auto& name : gone) {
    Status d = store_->delete_service_activity(name);
    if (!d.ok()) spdlog::warn("service activity of {} not removed: {}", name, d.message());
  }
  std::lock_guard lock(mu_);
  ++writes_;
}

}  // namespace mb
