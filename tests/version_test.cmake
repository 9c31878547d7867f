# File: tests/version_test.cmake — `mailbridge --version` prints "mailbridge <VERSION>" (the
# VERSION of project() in CMakeLists.txt), nothing on stderr, and exits 0.
# Run by CTest: cmake -DMAILBRIDGE=<the executable> -DVERSION=<PROJECT_VERSION> -P this file.
execute_process(COMMAND ${MAILBRIDGE} --version
                RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT code EQUAL 0)
  message(FATAL_ERROR "mailbridge --version exited ${code}: ${err}")
endif()
if(NOT out STREQUAL "mailbridge ${VERSION}\n")
  message(FATAL_ERROR "mailbridge --version printed \"${out}\", not \"mailbridge ${VERSION}\"")
endif()
if(NOT err STREQUAL "")
  message(FATAL_ERROR "mailbridge --version wrote to stderr: ${err}")
endif()
